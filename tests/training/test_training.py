"""Training end to end on tiny volumes: recording, determinism, NaN failures, test evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import paths, validation
from engine.config import RunConfig
from engine.runs import CURRENT_LR_METRIC, RunStatus
from engine.store import open_store
from engine.training import execute_run

# Timing columns differ between two otherwise identical runs.
_TIMING = {"epoch_time_s", "samples_per_s"}


def _run(config: dict) -> tuple[dict, object]:
    store = open_store()
    run_id = store.create_run(validation.validate(RunConfig.from_dict(config)), status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)
    return summary, store


def _tiny(**training) -> dict:
    return {
        "data": {"dataset": "shapes3d", "options": {"num_samples": 48, "size": 12, "mode": "location"}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
        "training": {"epochs": 3, "batch_size": 8, **training},
    }


def test_a_tiny_run_records_everything(lab_home):
    summary, store = _run(_tiny(learning_rate=3e-3))
    run_id = summary["run_id"]
    assert summary["status"] == RunStatus.FINISHED and summary["epochs_done"] == 3
    run = store.get_run(run_id)
    assert run.split_sizes == {"train": 32, "val": 8, "test": 8}
    assert run.class_names == ("left", "right") and run.num_classes == 2

    history = store.epoch_history(run_id)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    for name in ("loss", "accuracy", "auc", "val_loss", "val_accuracy", CURRENT_LR_METRIC, "epoch_time_s",
                 "samples_per_s"):
        assert all(np.isfinite(row[name]) for row in history), name
    assert history[-1]["loss"] < history[0]["loss"]
    # Throttled per-batch rows, but every epoch keeps its first and last batch (4 batches of 8):
    # even a run this short draws a per-batch curve.
    batch_steps = {(row["epoch"], row["step"]) for row in store.get_metrics(run_id, kind="batch")}
    assert {(epoch, step) for epoch in (1, 2, 3) for step in (0, 3)} <= batch_steps

    assert store.prediction_epochs(run_id, "val") == [1, 2, 3]
    val = store.get_predictions(run_id, "val", epoch=2)
    assert val["probabilities"].shape == (8, 2)
    np.testing.assert_allclose(val["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    test = store.get_predictions(run_id, "test")
    assert test["epoch"] == run.best_epoch and len(test["labels"]) == 8
    assert set(run.test_metrics) >= {"loss", "accuracy", "auc"}
    # The test accuracy is that of the stored test predictions (best weights).
    predicted = test["probabilities"].argmax(axis=1)
    assert run.test_metrics["accuracy"] == pytest.approx(np.mean(predicted == test["labels"]))

    folder = paths.run_dir(run_id)
    assert (folder / "best.keras").exists() and (folder / "last.keras").exists()
    splits = json.loads((folder / "splits.json").read_text())
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(48))


def test_the_same_config_and_seed_give_identical_epochs(lab_home):
    config = _tiny(seed=7, augment=True)
    first, store = _run(config)
    second, _ = _run(config)

    def numbers(run_id):
        return [{k: v for k, v in row.items() if k not in _TIMING} for row in store.epoch_history(run_id)]

    assert numbers(first["run_id"]) == numbers(second["run_id"])
    np.testing.assert_array_equal(
        store.get_predictions(first["run_id"], "test")["probabilities"],
        store.get_predictions(second["run_id"], "test")["probabilities"],
    )


def test_a_nan_loss_fails_the_run_with_the_reason_and_the_store_stays_usable(lab_home):
    absurd = {
        "data": {"dataset": "shapes3d", "options": {"num_samples": 48, "size": 12, "noise": 1.0}},
        "model": {"architecture": "tutorial3d"},
        # float32: this rate overflows it to NaN; under mixed_bfloat16 the same run may only stall.
        "training": {"optimizer": "sgd", "learning_rate": 1.0, "batch_size": 4, "epochs": 2, "precision": "float32"},
    }
    summary, store = _run(absurd)
    run = store.get_run(summary["run_id"])
    assert run.status == RunStatus.FAILED
    assert "loss became NaN" in run.error and "lower the learning rate" in run.error
    assert run.finished_at is not None
    # The next run on the same store goes through.
    after, _ = _run(_tiny(epochs=1))
    assert after["status"] == RunStatus.FINISHED


def test_a_failure_inside_training_is_recorded_with_its_traceback(lab_home, monkeypatch):
    from engine.training import run as run_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(run_module, "prepare_data", broken)
    summary, store = _run(_tiny(epochs=1))
    run = store.get_run(summary["run_id"])
    assert run.status == RunStatus.FAILED and "disk on fire" in run.error
    assert "Traceback" in run.traceback
