"""The run store on a real SQLite file and on a private PostgreSQL server (tests/store/postgres.py):
records, atomic transitions and claims, metrics, predictions, schema versions, the migration of a
database written before them, and first-time creation and migration by several processes at once."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig
from engine.errors import RunNotFound
from engine.runs import CURRENT_LR_METRIC, RunRecord, RunStatus
from engine.store import RunStore, open_store
from engine.store import migrations
from tests.store.postgres import BACKENDS, backend_url

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.fixture(params=BACKENDS)
def store(request):
    return open_store(backend_url(request, request.param))


def _config(**training) -> RunConfig:
    return RunConfig.from_dict({"data": {"dataset": "shapes3d"}, "training": training})


def test_the_database_lives_in_the_workspace_in_wal_mode(lab_home):
    store = open_store()
    assert (lab_home / "lab.db").exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_create_and_read_a_run(store):
    run_id = store.create_run(_config(epochs=4))
    run = store.get_run(run_id)
    assert run.status == RunStatus.QUEUED and run.name == f"run-{run_id}"
    assert run.dataset == "shapes3d" and run.epochs_total == 4
    assert isinstance(run, RunRecord) and isinstance(run.config, RunConfig) and run.config.training.epochs == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RunStatus.RUNNING  # a record is a snapshot
    assert [r.id for r in store.list_runs(statuses=[RunStatus.QUEUED])] == [run_id]
    with pytest.raises(RunNotFound):
        store.get_run(run_id + 100)


def test_transition_is_a_compare_and_set(store):
    run_id = store.create_run(_config(), status=RunStatus.RUNNING)
    assert store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], test_metrics={"accuracy": 1.0})
    assert not store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.RUNNING])  # a late stop loses
    run = store.get_run(run_id)
    assert run.status == RunStatus.FINISHED and run.test_metrics == {"accuracy": 1.0}


def test_claims_respect_slots_and_order(store):
    first, second, third = (store.create_run(_config()) for _ in range(3))
    assert store.claim_next_queued(["0", "1"]) == (first, "0")
    assert store.claim_next_queued(["0", "1"]) == (second, "1")
    assert store.claim_next_queued(["0", "1"]) is None  # both slots busy
    store.transition(first, RunStatus.FAILED, from_statuses=[RunStatus.RUNNING])
    assert store.claim_next_queued(["0", "1"]) == (third, "0")
    assert store.claim_next_queued(["0", "1"]) is None  # nothing queued


def test_metrics_are_read_incrementally_and_discarded_after_an_epoch(store):
    run_id = store.create_run(_config())
    store.log_metrics(run_id, [{"epoch": e, "name": "loss", "value": 1.0 / e} for e in (1, 2, 3)])
    rows = store.get_metrics(run_id, kind="epoch")
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert store.get_metrics(run_id, after_id=rows[1]["id"]) == rows[2:]
    store.log_metrics(run_id, [{"name": "loss", "value": 0.9, "epoch": 1, "kind": "batch", "step": 5}])
    assert [row["step"] for row in store.get_metrics(run_id, kind="batch")] == [5]
    store.discard_after_epoch(run_id, 1)
    assert store.epoch_history(run_id) == [{"epoch": 1, "loss": 1.0}]


def test_predictions_round_trip(store):
    run_id = store.create_run(_config())
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    for epoch in (1, 2):
        store.save_predictions(run_id, epoch, "val", np.array([4, 7, 9]), np.array([0, 1, 1]), probabilities * epoch / 2)
    assert store.prediction_epochs(run_id, "val") == [1, 2]
    latest = store.get_predictions(run_id, "val")
    assert latest["epoch"] == 2
    np.testing.assert_array_equal(latest["sample_ids"], [4, 7, 9])
    np.testing.assert_allclose(latest["probabilities"], probabilities)
    assert store.get_predictions(run_id, "test") is None


def test_delete_removes_everything_of_a_run(store):
    run_id = store.create_run(_config())
    store.log_metrics(run_id, [{"name": "loss", "value": 1.0, "epoch": 1}])
    store.log_event(run_id, "hello")
    store.delete_run(run_id)
    assert store.list_runs() == [] and store.get_metrics(run_id) == [] and store.get_events(run_id) == []


def test_a_status_changes_only_through_a_transition(store):
    run_id = store.create_run(_config())
    with pytest.raises(TypeError, match="transition"):
        store.update_run(run_id, status=RunStatus.FINISHED)


def test_a_new_database_is_at_the_latest_schema_version(store):
    assert isinstance(store, RunStore)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]


def test_a_database_written_before_schema_versions_opens_and_lists_its_runs(tmp_path):
    """tests/store/fixtures/lab-before-schema-version.db was written by the store as it was before this change."""
    path = tmp_path / "lab.db"
    shutil.copy(FIXTURES / "lab-before-schema-version.db", path)
    with sqlite3.connect(path) as conn:
        assert "schema_version" not in {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("SELECT count(*) FROM metrics WHERE name = 'lr'").fetchone()[0] == 3
    store = open_store(f"sqlite:///{path}")
    runs = store.list_runs()
    assert [(run.id, run.name, run.status) for run in runs] == [
        (5, "fixture interrupted", RunStatus.INTERRUPTED),
        (4, "fixture failed", RunStatus.FAILED),
        (3, "fixture queued", RunStatus.QUEUED),
        (2, "fixture nan", RunStatus.FINISHED),
        (1, "fixture finished", RunStatus.FINISHED),
    ]
    finished = store.get_run(1)
    assert finished.config.data.dataset == "shapes3d" and finished.epochs_done == 2
    assert finished.split_sizes == {"train": 22, "val": 5, "test": 5} and finished.class_names == ("cube", "ball")
    assert finished.test_metrics["accuracy"] == pytest.approx(0.4)
    assert store.get_run(4).error == "The loss became NaN in epoch 1."
    # The migration renamed the current learning rate (version 2); nothing else was lost.
    history = store.epoch_history(1)
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0][CURRENT_LR_METRIC] == pytest.approx(1e-3) and "lr" not in history[0]
    assert store.prediction_epochs(1, "val") == [1, 2] and store.get_predictions(1, "test") is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]
    # The migrated database keeps working: a new run gets the next id.
    assert store.create_run(_config()) == 6


def test_step_6_gives_a_version_5_database_run_owners(tmp_path):
    """A database at version 5 (no ``owner`` column) gains it; its runs have no owner, new ones keep theirs."""
    written = tmp_path / "written.db"
    old = open_store(f"sqlite:///{written}")
    run_id = old.create_run(_config())
    old.engine.dispose()  # the last connection closes: the WAL is checkpointed into the file
    path = tmp_path / "lab.db"  # a new URL: the store keeps one engine per URL, and upgrades when it opens one
    shutil.copy(written, path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN owner")
        conn.execute("UPDATE schema_version SET version = 5")
    store = open_store(f"sqlite:///{path}")
    assert store.get_run(run_id).owner is None
    assert store.get_run(store.create_run(_config(), owner="session-1")).owner == "session-1"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]
        assert "owner" in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def test_a_database_from_a_newer_lab_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "lab.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (?)", (migrations.LATEST_VERSION + 1,))
    with pytest.raises(migrations.SchemaError, match="newer than this lab's"):
        open_store(f"sqlite:///{path}")


def test_the_store_refuses_a_second_row_for_the_same_run_and_epoch(store):
    from engine.errors import DuplicateMetrics

    run_id = store.create_run(_config())
    other = store.create_run(_config())
    store.log_metrics(run_id, [{"epoch": 1, "name": "loss", "value": 1.0}, {"epoch": 1, "name": "val_loss", "value": 1.1}])
    with pytest.raises(DuplicateMetrics, match="already has metrics of epoch 1"):
        store.log_metrics(run_id, [{"epoch": 1, "name": "loss", "value": 0.5}])
    assert [row["value"] for row in store.get_metrics(run_id) if row["name"] == "loss"] == [1.0]  # nothing added
    store.log_metrics(other, [{"epoch": 1, "name": "loss", "value": 0.7}])  # another run's epoch 1 is fine
    store.log_metrics(run_id, [{"epoch": 1, "step": s, "kind": "batch", "name": "loss", "value": s} for s in (0, 1)])
    with pytest.raises(DuplicateMetrics):
        store.log_metrics(run_id, [{"epoch": 1, "step": 1, "kind": "batch", "name": "loss", "value": 9.0}])


def test_migration_drops_epochs_recorded_twice_keeping_the_first(tmp_path):
    """A database written while a run could be trained twice keeps one copy of each epoch."""
    path = tmp_path / "lab.db"
    shutil.copy(FIXTURES / "lab-before-schema-version.db", path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO metrics (run_id, kind, epoch, step, name, value, wall_time) "
                     "VALUES (1, 'epoch', 2, NULL, 'loss', 123.0, 0)")
        conn.execute("INSERT INTO metrics (run_id, kind, epoch, step, name, value, wall_time) "
                     "SELECT run_id, kind, epoch, step, name, value + 1, wall_time FROM metrics "
                     "WHERE run_id = 1 AND kind = 'batch' LIMIT 1")
    store = open_store(f"sqlite:///{path}")
    losses = [row["value"] for row in store.get_metrics(1, kind="epoch") if row["name"] == "loss"]
    assert len(losses) == 2 and 123.0 not in losses
    batches = [(row["epoch"], row["step"], row["name"]) for row in store.get_metrics(1, kind="batch")]
    assert len(batches) == len(set(batches))
    assert store.get_run(3).queued_at == store.get_run(3).created_at  # the queued run got its queue time
