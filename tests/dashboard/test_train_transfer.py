"""Train's transfer-learning section: start from a run (frozen blocks, backbone rate), pretraining; the
Runs table shows each run's lineage."""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np

from engine import paths
from engine.weights import checkpoints
from engine.store import open_store
from ui import tables


def _fake_checkpoint(run_id: int) -> None:
    """A .keras archive in Keras 3's layout holding one conv layer (written with h5py: no TensorFlow here)."""
    weights = io.BytesIO()
    with h5py.File(weights, "w") as handle:
        variables = handle.create_group("layers/conv3d/vars")
        variables.attrs["name"] = "block1_conv"
        variables["0"] = np.zeros((3, 3, 3, 1, 32), dtype=np.float32)
        variables["1"] = np.zeros((32,), dtype=np.float32)
    with zipfile.ZipFile(paths.run_dir(run_id) / checkpoints.BEST, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", weights.getvalue())


def test_train_starts_a_run_from_another_run_with_frozen_blocks_and_a_lower_backbone_rate(app, make_run):
    source = make_run("finished", epochs_done=2, name="encoder")
    _fake_checkpoint(source)
    make_run("running", epochs_done=1)  # holds the slot: no worker starts for the new run
    at = app("app_pages/train.py")
    at.radio(key="train_start_from").set_value("A run").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train_init_run").value == source
    at.number_input(key="train_freeze_blocks").set_value(1).run()
    at.select_slider(key="train_backbone_lr_scale").set_value(0.1).run()
    at.button(key="train_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    run = open_store().list_runs(limit=1)[0]
    training = run.config.training
    assert (training.init_from, training.freeze_blocks, training.backbone_lr_scale) == (f"run:{source}", 1, 0.1)
    assert run.lineage == f"from #{source}"
    assert tables.runs_frame([run])["lineage"].tolist() == [f"from #{source}"]


def test_train_says_when_no_run_can_be_started_from_and_refuses_the_launch(app):
    at = app("app_pages/train.py")
    at.radio(key="train_start_from").set_value("A run").run()
    assert any("has a checkpoint yet" in info.value for info in at.info)
    at.button(key="train_launch").click().run()
    assert any("give a run" in error.value for error in at.error), [e.value for e in at.error]
    assert open_store().list_runs() == []


def test_train_launches_a_pretraining_run(app, make_run):
    make_run("running", epochs_done=1)
    at = app("app_pages/train.py")
    at.toggle(key="train_pretext").set_value(True).run()
    at.button(key="train_launch").click().run()
    assert not at.error, [e.value for e in at.error]
    run = open_store().list_runs(limit=1)[0]
    assert run.config.training.pretext == "rotation" and run.lineage == "pretraining"
