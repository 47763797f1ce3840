"""Schema step 8: a run's sweep is a real column (``sweep_id``), no longer parsed out of its group
"sweep-<id>"; a database from before it gets the column backfilled from that string. On SQLite and on
PostgreSQL (tests/store/postgres.py)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.config import RunConfig
from engine.store import migrations, open_store
from engine.store.sql import forget_engine
from tests.store.postgres import on_both_stores


def _config(name: str) -> RunConfig:
    return RunConfig.from_dict({"name": name, "data": {"dataset": "shapes3d"}})


@on_both_stores
def test_runs_of_a_sweep_carry_its_id_and_are_listed_by_it(store_url):
    store = open_store(store_url)
    sweep_id = store.create_sweep("lr", {"method": "random"})
    trial_runs = store.create_runs([_config("fold 1"), _config("fold 2")], group=f"sweep-{sweep_id}", trial=0,
                                   sweep_id=sweep_id)
    cv_run = store.create_run(_config("cv"), group="cv-1a2b3c")
    assert [store.get_run(run_id).sweep_id for run_id in trial_runs] == [sweep_id, sweep_id]
    assert store.get_run(cv_run).sweep_id is None
    assert sorted(run.id for run in store.list_runs(sweep_id=sweep_id)) == trial_runs
    assert store.list_runs(sweep_id=sweep_id + 1) == []
    # The group string stays as it was, for display and grouping.
    assert {run.group for run in store.list_runs(sweep_id=sweep_id)} == {f"sweep-{sweep_id}"}
    assert store.get_run(trial_runs[0]).to_dict()["sweep_id"] == sweep_id


@on_both_stores
def test_step_8_backfills_the_sweep_id_of_a_version_7_database_from_the_group(store_url):
    old = open_store(store_url)
    sweep_run = old.create_run(_config("trial"), group="sweep-12", trial=3)
    cv_run = old.create_run(_config("fold"), group="cv-1a2b3c")
    odd_run = old.create_run(_config("odd"), group="sweep-notanumber")
    plain_run = old.create_run(_config("plain"))
    with old.engine.begin() as conn:
        # The database as version 7 wrote it: no sweep_id column (SQLite drops no indexed column).
        conn.exec_driver_sql("DROP INDEX ix_runs_sweep_id")
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN sweep_id")
        conn.exec_driver_sql("UPDATE schema_version SET version = 7")
    forget_engine(store_url)

    store = open_store(store_url)
    assert store.get_run(sweep_run).sweep_id == 12 and store.get_run(sweep_run).group == "sweep-12"
    assert [store.get_run(run_id).sweep_id for run_id in (cv_run, odd_run, plain_run)] == [None, None, None]
    assert [run.id for run in store.list_runs(sweep_id=12)] == [sweep_run]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]
        assert "ix_runs_sweep_id" in {index["name"] for index in sa.inspect(conn).get_indexes("runs")}
