"""The recorder's end of an epoch: one validation pass, checkpoints by elapsed time, each naming its epoch."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

from engine import paths, validation
from engine.weights import checkpoints
from engine.config import RunConfig
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import callbacks, execute_run


def _run(monkeypatch, interval_s: float, epochs: int = 4) -> tuple[int, object, list[tuple[str, int | None]]]:
    """A tiny run with CHECKPOINT_INTERVAL_S = ``interval_s``; (run id, store, the checkpoints written)."""
    monkeypatch.setattr(callbacks, "CHECKPOINT_INTERVAL_S", interval_s)
    written: list[tuple[str, int | None]] = []
    save = checkpoints.save

    def counting_save(model, path: Path, *, epoch: int | None = None) -> None:
        written.append((path.name, epoch))
        save(model, path, epoch=epoch)

    monkeypatch.setattr(checkpoints, "save", counting_save)
    config = validation.validate(RunConfig.from_dict({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 40, "size": 8}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, "padding": "same"},
        "training": {"epochs": epochs, "batch_size": 8, "max_saliency_samples": 0},
    }))
    store = open_store()
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(run_id, pid=os.getpid())
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FINISHED, summary["error"]
    return run_id, store, written


def test_validation_is_one_predict_pass_whose_figures_match_keras_evaluate(lab_home, monkeypatch):
    from engine.training import pipeline
    from engine.training.run import prepare_data

    evaluations: list[int] = []
    evaluate = keras.Model.evaluate

    def counting_evaluate(self, *args, **kwargs):
        evaluations.append(1)
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "evaluate", counting_evaluate)
    run_id, store, _ = _run(monkeypatch, interval_s=0.0, epochs=2)
    # Keras' fit validates through evaluate(); only the test split's evaluation is left.
    assert len(evaluations) == 1
    last_epoch = store.epoch_history(run_id)[-1]
    assert last_epoch["epoch"] == 2
    assert store.get_predictions(run_id, "val") is not None

    run_dir = paths.run_dir(run_id)
    model = keras.models.load_model(run_dir / checkpoints.LAST)  # the weights at the end of epoch 2
    data = prepare_data(store.get_run(run_id).config, run_dir, store, run_id)
    val = pipeline.make_dataset(data.x_val, pipeline.encode_labels(data.y_val, data.num_classes), 8,
                                training=False, seed=0)
    expected = evaluate(model, val, return_dict=True, verbose=0)
    for name in ("loss", "accuracy", "auc"):
        assert last_epoch[f"val_{name}"] == pytest.approx(expected[name], rel=1e-4, abs=1e-6), name


def test_checkpoints_are_written_by_elapsed_time_and_at_the_end(lab_home, monkeypatch):
    run_id, store, written = _run(monkeypatch, interval_s=3600.0)
    run = store.get_run(run_id)
    # After the first epoch (so a run can always be resumed), then nothing until the end of training.
    assert [entry for entry in written if entry[0] == checkpoints.LAST] == [(checkpoints.LAST, 1),
                                                                           (checkpoints.LAST, 4)]
    folder = paths.run_dir(run_id)
    assert checkpoints.saved_epoch(folder / checkpoints.LAST) == 4
    assert checkpoints.saved_epoch(folder / checkpoints.BEST) == run.best_epoch
    assert checkpoints.usable(folder / checkpoints.BEST) and not list(folder.glob(".*tmp*"))


def test_every_epoch_when_the_interval_is_zero(lab_home, monkeypatch):
    _, _, written = _run(monkeypatch, interval_s=0.0, epochs=3)
    assert [epoch for name, epoch in written if name == checkpoints.LAST] == [1, 2, 3]


def test_a_pending_best_is_written_from_its_own_weights(tmp_path):
    """best.keras of an epoch between two writes holds that epoch's weights, not the current ones."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    recorder = callbacks.StoreRecorder(
        None, 1, tmp_path, validation=(None, np.zeros(0), np.zeros(0)), num_classes=2, num_train_samples=1,
        monitor="val_loss", mode="min",
    )
    recorder.set_model(model)
    best_weights = [weight.copy() for weight in model.get_weights()]
    recorder.best_value, recorder.best_epoch = 0.5, 2
    recorder._best_unsaved, recorder._best_weights = True, best_weights
    current = [weight + 1.0 for weight in best_weights]
    model.set_weights(current)
    recorder._write_checkpoints(3)
    assert checkpoints.saved_epoch(tmp_path / checkpoints.LAST) == 3
    assert checkpoints.saved_epoch(tmp_path / checkpoints.BEST) == 2
    for saved, expected in zip(keras.models.load_model(tmp_path / checkpoints.BEST).get_weights(), best_weights):
        np.testing.assert_array_equal(saved, expected)
    for saved, expected in zip(keras.models.load_model(tmp_path / checkpoints.LAST).get_weights(), current):
        np.testing.assert_array_equal(saved, expected)
    for now, expected in zip(model.get_weights(), current):  # training goes on with its own weights
        np.testing.assert_array_equal(now, expected)
    assert recorder.saved_epoch == 3 and not recorder._best_unsaved


def test_resume_epoch_is_the_checkpoints_own(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert checkpoints.resume_epoch(tmp_path, 5) == 5  # no checkpoint that says: the store's count
    model.save(tmp_path / checkpoints.LAST)  # written before checkpoints named their epoch
    assert checkpoints.saved_epoch(tmp_path / checkpoints.LAST) is None
    assert checkpoints.resume_epoch(tmp_path, 5) == 5
    checkpoints.save(model, tmp_path / checkpoints.LAST, epoch=3)
    assert checkpoints.resume_epoch(tmp_path, 5) == 3
    assert checkpoints.resume_epoch(tmp_path, 0) == 0
    keras.models.load_model(tmp_path / checkpoints.LAST)  # Keras ignores the lab's member


def test_recorded_best_is_the_first_of_the_best_kept_epochs(lab_home):
    store = open_store()
    run_id = store.create_run(RunConfig.from_dict({"data": {"dataset": "shapes3d"}}), status=RunStatus.RUNNING)
    store.log_metrics(run_id, [{"kind": "epoch", "epoch": epoch, "name": "val_loss", "value": value}
                               for epoch, value in ((1, 0.9), (2, 0.4), (3, 0.4), (4, float("nan")))])
    assert callbacks.recorded_best(store, run_id, "val_loss", "min") == (0.4, 2)
    store.discard_after_epoch(run_id, 1)
    assert callbacks.recorded_best(store, run_id, "val_loss", "min") == (0.9, 1)
    assert callbacks.recorded_best(store, run_id, "val_accuracy", "max") == (None, None)
