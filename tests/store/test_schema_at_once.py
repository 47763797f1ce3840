"""First-time creation and migration of the store's schema by several processes at once, on SQLite and on
PostgreSQL (tests/store/postgres.py): every process opens the store without an error, the schema is made
or migrated once, and Optuna's study storage (the same database, its own tables) opens beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from engine.config import RunConfig
from engine.store import migrations, open_store
from engine.store.sql import forget_engine
from engine.sweeps import study
from tests.conftest import REPO_ROOT
from tests.store.postgres import on_both_stores

OPENER = Path(__file__).with_name("open_at_once.py")
PROCESSES = 6


def _open_at_once(url: str, *options: str) -> list[int]:
    done = subprocess.run([sys.executable, str(OPENER), url, str(PROCESSES), *options], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len({line["pid"] for line in lines}) == PROCESSES, lines  # separate processes, each succeeded
    return sorted(line["run_id"] for line in lines)


def _version_rows(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version FROM schema_version").fetchall()
    finally:
        engine.dispose()


@on_both_stores
def test_processes_creating_a_new_database_at_once_make_one_schema_and_one_study(store_url):
    assert _open_at_once(store_url, "--optuna") == list(range(1, PROCESSES + 1))
    assert _version_rows(store_url) == [(migrations.LATEST_VERSION,)]
    summaries = study.storage(store_url).get_all_studies()
    assert [summary.study_name for summary in summaries] == [study.study_name(1)]  # one study, loaded by all


@on_both_stores
def test_processes_opening_an_older_database_at_once_migrate_it_once(store_url):
    """A database at version 5 (before run owners) is brought to the latest version by whichever process
    comes first; the others find it migrated. A run recorded before is kept."""
    old = open_store(store_url)
    kept = old.create_run(RunConfig(name="before the migration"))
    with old.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE runs DROP COLUMN owner")
        conn.exec_driver_sql("UPDATE schema_version SET version = 5")
    forget_engine(store_url)
    assert _open_at_once(store_url) == list(range(kept + 1, kept + 1 + PROCESSES))
    assert _version_rows(store_url) == [(migrations.LATEST_VERSION,)]
    store = open_store(store_url)
    assert store.get_run(kept).name == "before the migration" and store.get_run(kept).owner is None
    assert len(store.list_runs()) == PROCESSES + 1
