"""Schema step 9: a sweep trial keeps Optuna's public trial ``number``; a database from before it, which
kept the id of Optuna's storage (``optuna_trial_id``), has each id translated through Optuna's own
``trials`` table in the same database. On SQLite and on PostgreSQL (tests/store/postgres.py)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.store import migrations, open_store
from engine.store.sql import forget_engine
from engine.sweeps import study
from engine.sweeps.spec import SweepSpec
from tests.store.postgres import on_both_stores

SPEC = SweepSpec.from_dict({"method": "optuna", "trials": 4, "space": {"model.dropout_rate": {"low": 0.0, "high": 0.5}}})


def _asked_trials(url: str, sweep_id: int, count: int) -> list[int]:
    the_study = study.load(url, sweep_id, SPEC)
    return [the_study.ask().number for _ in range(count)]


@on_both_stores
def test_step_9_translates_optuna_trial_ids_into_numbers(store_url):
    old = open_store(store_url)
    first, second = old.create_sweep("a", SPEC.to_dict()), old.create_sweep("b", SPEC.to_dict())
    for sweep_id in (first, second):
        study.create(store_url, sweep_id, SPEC)
    assert _asked_trials(store_url, first, 2) == [0, 1]
    assert _asked_trials(store_url, second, 2) == [0, 1]  # numbers 0, 1 again; storage ids 3, 4 (or so)
    storage = study.storage(store_url)
    second_study = storage.get_study_id_from_name(study.study_name(second))
    ids = [storage.get_trial_id_from_study_id_trial_number(second_study, number) for number in (0, 1)]
    assert ids != [0, 1]
    for trial in range(3):
        assert old.claim_trial(second, trials=4, in_flight=4) == trial
    with old.engine.begin() as conn:
        # The database as version 8 wrote it: Optuna's storage ids; trial 2's id names no Optuna trial.
        conn.exec_driver_sql("ALTER TABLE sweep_trials DROP COLUMN optuna_trial_number")
        conn.exec_driver_sql("ALTER TABLE sweep_trials ADD COLUMN optuna_trial_id INTEGER")
        for trial, trial_id in enumerate([ids[1], ids[0], 999_999]):
            conn.execute(sa.text("UPDATE sweep_trials SET optuna_trial_id = :id WHERE sweep_id = :sweep AND trial = :trial"),
                         {"id": trial_id, "sweep": second, "trial": trial})
        conn.exec_driver_sql("UPDATE schema_version SET version = 8")
    forget_engine(store_url)

    store = open_store(store_url)
    assert [t.optuna_trial_number for t in store.list_trials(second)] == [1, 0, None]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]
        assert "optuna_trial_id" not in {column["name"] for column in sa.inspect(conn).get_columns("sweep_trials")}
