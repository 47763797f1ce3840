"""Schema step 7: a run's lineage (``parent_run``) in the store, its folder copy and its record."""

from __future__ import annotations

import shutil
import sqlite3

from engine.config import RunConfig
from engine.store import migrations, open_store


def _config(init_from: str | None = None) -> RunConfig:
    config = RunConfig()
    config.training.init_from = init_from
    return config


def test_step_7_gives_a_version_6_database_run_lineage(tmp_path):
    written = tmp_path / "written.db"
    old = open_store(f"sqlite:///{written}")
    run_id = old.create_run(_config())
    old.engine.dispose()
    path = tmp_path / "lab.db"
    shutil.copy(written, path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN parent_run")
        conn.execute("UPDATE schema_version SET version = 6")
    store = open_store(f"sqlite:///{path}")
    assert store.get_run(run_id).parent_run is None and store.get_run(run_id).started_from == ""
    child = store.create_run(_config(f"run:{run_id}"))
    assert store.get_run(child).started_from == f"#{run_id}"  # queued: read from the config
    store.update_run(child, parent_run=run_id)
    assert store.get_run(child).parent_run == run_id
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]
        assert "parent_run" in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def test_a_run_from_a_weights_file_is_named_by_the_file(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'lab.db'}")
    run_id = store.create_run(_config("/uploads/weights/ct-encoder.keras"))
    assert store.get_run(run_id).started_from == "ct-encoder.keras"
    assert store.get_run(run_id).to_dict()["parent_run"] is None
