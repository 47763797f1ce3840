"""Checkpoints are written atomically and never offered (resume, download) when they would not load."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from engine import jobs, paths
from engine.weights import checkpoints
from engine.config import RunConfig
from engine.errors import RunStateError
from engine.runs import RunStatus
from engine.store import open_store


def _model() -> keras.Model:
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_problem_tells_whole_from_missing_empty_and_damaged(tmp_path):
    path = tmp_path / checkpoints.BEST
    assert checkpoints.problem(path) == "is missing"
    path.write_bytes(b"")
    assert checkpoints.problem(path) == "is empty (0 bytes)"
    path.write_bytes(b"not a zip at all")
    assert checkpoints.problem(path).startswith("is damaged")
    checkpoints.save(_model(), path)
    assert checkpoints.usable(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # what a kill in the middle of an in-place write leaves
    assert not checkpoints.usable(path)


def test_a_save_cut_short_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / checkpoints.BEST
    model = _model()
    checkpoints.save(model, path)
    before = path.read_bytes()

    def killed_midway(self, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(before[:100])
        raise KeyboardInterrupt("SIGTERM while writing")

    monkeypatch.setattr(keras.Model, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save(model, path)
    assert path.read_bytes() == before and checkpoints.usable(path)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_resume_refuses_a_run_whose_last_checkpoint_would_not_load(lab_home):
    store = open_store()
    run_id = store.create_run(RunConfig.from_dict({"data": {"dataset": "shapes3d"}}), status=RunStatus.RUNNING)
    store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.RUNNING], epochs_done=2,
                     finished_at=time.time())
    (paths.run_dir(run_id) / checkpoints.LAST).write_bytes(b"")
    with pytest.raises(RunStateError, match=r"cannot be resumed after epoch 2: its checkpoint .*last.keras is empty"):
        jobs.resume(run_id, store=store)
    assert store.get_run(run_id).status == RunStatus.STOPPED  # nothing queued
    (paths.run_dir(run_id) / checkpoints.LAST).unlink()
    with pytest.raises(RunStateError, match="is missing"):
        jobs.resume(run_id, store=store)


def test_a_trained_run_has_whole_checkpoints(lab_home):
    """The recorder writes best.keras and last.keras (no ModelCheckpoint writing in place)."""
    from engine import validation
    from engine.training import execute_run

    store = open_store()
    config = validation.validate(RunConfig.from_dict({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 8}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, "padding": "same"},
        "training": {"epochs": 2, "batch_size": 8},
    }))
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(run_id, pid=__import__("os").getpid())
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FINISHED
    folder = paths.run_dir(run_id)
    assert checkpoints.usable(folder / checkpoints.BEST) and checkpoints.usable(folder / checkpoints.LAST)
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".keras") == [checkpoints.BEST, checkpoints.LAST]
    assert np.isfinite(store.get_run(run_id).best_value)


def test_best_duplicated_from_last_keeps_its_weights_when_last_is_saved_again(tmp_path):
    last, best = tmp_path / checkpoints.LAST, tmp_path / checkpoints.BEST
    model = _model()
    checkpoints.save(model, last)
    checkpoints.duplicate(last, best)
    kept = [weight.copy() for weight in model.get_weights()]
    model.set_weights([weight + 1.0 for weight in kept])
    checkpoints.save(model, last)  # the next epoch replaces last.keras by a rename
    assert checkpoints.usable(best) and checkpoints.usable(last)
    for saved, expected in zip(keras.models.load_model(best).get_weights(), kept):
        np.testing.assert_array_equal(saved, expected)
    assert not list(tmp_path.glob(".*tmp*"))
