"""The run store on a real SQLite file: runs, atomic transitions and claims, metrics, predictions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import RunConfig
from engine.errors import RunNotFound
from engine.store import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, open_store


@pytest.fixture
def store(lab_home):
    return open_store()


def _config(**training) -> dict:
    config = RunConfig.from_dict({"data": {"dataset": "shapes3d"}, "training": training})
    return config.to_dict()


def test_the_database_lives_in_the_workspace_in_wal_mode(store, lab_home):
    assert (lab_home / "lab.db").exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_create_and_read_a_run(store):
    run_id = store.create_run(_config(epochs=4))
    run = store.get_run(run_id)
    assert run["status"] == QUEUED and run["name"] == f"run-{run_id}"
    assert run["dataset"] == "shapes3d" and run["epochs_total"] == 4
    assert run["config"]["training"]["epochs"] == 4
    assert [r["id"] for r in store.list_runs(statuses=[QUEUED])] == [run_id]
    with pytest.raises(RunNotFound):
        store.get_run(run_id + 100)


def test_transition_is_a_compare_and_set(store):
    run_id = store.create_run(_config(), status=RUNNING)
    assert store.transition(run_id, FINISHED, from_statuses=[RUNNING], test_metrics={"accuracy": 1.0})
    assert not store.transition(run_id, STOPPED, from_statuses=[RUNNING])  # a late stop loses
    run = store.get_run(run_id)
    assert run["status"] == FINISHED and run["test_metrics"] == {"accuracy": 1.0}


def test_claims_respect_slots_and_order(store):
    first, second, third = (store.create_run(_config()) for _ in range(3))
    assert store.claim_next_queued(["0", "1"]) == (first, "0")
    assert store.claim_next_queued(["0", "1"]) == (second, "1")
    assert store.claim_next_queued(["0", "1"]) is None  # both slots busy
    store.transition(first, FAILED, from_statuses=[RUNNING])
    assert store.claim_next_queued(["0", "1"]) == (third, "0")
    assert store.claim_next_queued(["0", "1"]) is None  # nothing queued


def test_metrics_are_read_incrementally_and_discarded_after_an_epoch(store):
    run_id = store.create_run(_config())
    store.log_metrics(run_id, [{"epoch": e, "name": "loss", "value": 1.0 / e} for e in (1, 2, 3)])
    rows = store.get_metrics(run_id, kind="epoch")
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert store.get_metrics(run_id, after_id=rows[1]["id"]) == rows[2:]
    store.log_metric(run_id, "loss", 0.9, epoch=1, kind="batch", step=5)
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
    store.log_metric(run_id, "loss", 1.0, epoch=1)
    store.log_event(run_id, "hello")
    store.delete_run(run_id)
    assert store.list_runs() == [] and store.get_metrics(run_id) == [] and store.get_events(run_id) == []
