"""Transfer learning: starting weights from a run or a file, frozen blocks, the backbone rate, pretraining."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from engine import models, paths, validation
from engine.weights import checkpoints, warm_start
from engine.config import ModelConfig, RunConfig
from engine.errors import ConfigError, DataError
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import execute_run, pretrain, transfer


class WeightsAt(keras.callbacks.Callback):
    """Copies every layer's weights when training begins and when it ends."""

    def __init__(self):
        super().__init__()
        self.begin: dict[str, list[np.ndarray]] = {}
        self.end: dict[str, list[np.ndarray]] = {}

    def _copy(self) -> dict[str, list[np.ndarray]]:
        return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers if layer.weights}

    def on_train_begin(self, logs=None):
        self.begin = self._copy()

    def on_train_end(self, logs=None):
        self.end = self._copy()


def _config(mode: str = "location", **training) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 12, "mode": mode}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
        "training": {"epochs": 1, "batch_size": 8, "max_saliency_samples": 0, **training},
    })


def _train(store, config: RunConfig, callbacks=()) -> int:
    run_id = store.create_run(validation.validate(config), status=RunStatus.RUNNING)
    summary = execute_run(store, run_id, callbacks=callbacks)
    assert summary["status"] == RunStatus.FINISHED, summary["error"]
    return run_id


def _checkpoint_weights(run_id: int) -> dict[str, list[np.ndarray]]:
    model = keras.models.load_model(paths.run_dir(run_id) / checkpoints.BEST, compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _same(left: list[np.ndarray], right: list[np.ndarray]) -> bool:
    return len(left) == len(right) and all(np.array_equal(a, b) for a, b in zip(left, right))


def test_a_run_started_from_another_runs_checkpoint_loads_its_weights_and_rebuilds_the_head(lab_home):
    store = open_store()
    source_id = _train(store, _config("location", learning_rate=3e-3))
    source = _checkpoint_weights(source_id)

    # Another dataset (cube / ball instead of left / right): the output layer is new.
    watch = WeightsAt()
    run_id = _train(store, _config("shape", init_from=f"run:{source_id}"), callbacks=[watch])
    for name in ("block1_conv", "block2_conv", "head_dense"):
        assert _same(watch.begin[name], source[name]), name
    assert not _same(watch.begin["predictions"], source["predictions"])

    run = store.get_run(run_id)
    assert run.parent_run == source_id and run.started_from == f"#{source_id}"
    record = json.loads((paths.run_dir(run_id) / transfer.TRANSFER_FILE).read_text())
    outcomes = {row["layer"]: row["outcome"] for row in record["layers"]}
    assert outcomes == {"block1_conv": warm_start.LOADED, "block2_conv": warm_start.LOADED,
                        "head_dense": warm_start.LOADED, "predictions": warm_start.REBUILT}
    events = [event["message"] for event in store.get_events(run_id)]
    assert any(f"started from run #{source_id}: 3 of 4 layers" in message for message in events)

    # The same classes again: the output layer is loaded too.
    watch_same = WeightsAt()
    _train(store, _config("location", init_from=str(source_id)), callbacks=[watch_same])
    assert _same(watch_same.begin["predictions"], source["predictions"])


def test_a_frozen_block_does_not_change_during_training(lab_home):
    store = open_store()
    source_id = _train(store, _config("location", learning_rate=3e-3))
    watch = WeightsAt()
    config = _config("shape", init_from=f"run:{source_id}", freeze_blocks=1, epochs=2, learning_rate=1e-2)
    _train(store, config, callbacks=[watch])
    assert _same(watch.end["block1_conv"], watch.begin["block1_conv"])
    assert not _same(watch.end["block2_conv"], watch.begin["block2_conv"])
    assert not _same(watch.end["head_dense"], watch.begin["head_dense"])


def test_frozen_batchnorm_keeps_its_statistics(lab_home):
    store = open_store()
    batchnorm = {"batchnorm": True}
    source = _config("location", learning_rate=3e-3)
    source.model = ModelConfig(architecture="tutorial3d", width_multiplier=0.25, **batchnorm)
    source_id = _train(store, source)
    target = _config("shape", init_from=f"run:{source_id}", freeze_blocks=2, epochs=2)
    target.model = ModelConfig(architecture="tutorial3d", width_multiplier=0.25, **batchnorm)
    watch = WeightsAt()
    _train(store, target, callbacks=[watch])
    for name in ("block1_conv", "block1_bn", "block2_conv", "block2_bn"):
        assert _same(watch.end[name], watch.begin[name]), name


def test_the_backbone_steps_at_its_fraction_of_the_learning_rate(tmp_path):
    model = models.build_model("tutorial3d", (12, 12, 12, 1), 2, ModelConfig(architecture="tutorial3d",
                                                                         width_multiplier=0.25))
    optimizer = transfer.scale_backbone(keras.optimizers.SGD(0.1), model, 0.25)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    optimizer.apply([keras.ops.ones_like(v) for v in variables], variables)
    for variable, old in zip(variables, before):
        step = float(np.mean(old - np.array(variable)))
        expected = 0.025 if variable.path.startswith("block") else 0.1
        assert step == pytest.approx(expected, rel=1e-5), variable.path
    # A checkpoint holds a plain SGD (it loads without the lab), and a resume scales the loaded one again.
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.save(tmp_path / "last.keras")
    loaded = keras.models.load_model(tmp_path / "last.keras")
    assert type(loaded.optimizer) is keras.optimizers.SGD
    again = transfer.scale_backbone(loaded.optimizer, loaded, 0.25)
    variables = loaded.trainable_variables
    before = [np.array(v) for v in variables]
    again.apply([keras.ops.ones_like(v) for v in variables])
    steps = {v.path: float(np.mean(old - np.array(v))) for v, old in zip(variables, before)}
    assert steps["block1_conv/kernel"] == pytest.approx(0.025, rel=1e-5)
    assert steps["predictions/kernel"] == pytest.approx(0.1, rel=1e-5)


def test_weights_files_in_each_format_read_alike_and_mismatches_are_listed(tmp_path):
    small = models.build_model("tutorial3d", (12, 12, 12, 1), 2, ModelConfig(architecture="tutorial3d",
                                                                         width_multiplier=0.25))
    small.save(tmp_path / "model.keras")
    small.save_weights(tmp_path / "model.weights.h5")
    small.save(tmp_path / "legacy.h5")
    expected = {layer.name: layer.get_weights() for layer in small.layers if layer.weights}
    for name in ("model.keras", "model.weights.h5", "legacy.h5"):
        found = warm_start.read_layer_weights(tmp_path / name)
        assert set(found) == set(expected), name
        assert all(_same(found[layer], expected[layer]) for layer in expected), name

    wider = models.build_model("tutorial3d", (12, 12, 12, 1), 2, ModelConfig(architecture="tutorial3d",
                                                                         width_multiplier=0.5))
    target = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in wider.layers if layer.weights}
    rows = warm_start.match(target, expected, keep_output=False)
    assert {row.outcome for row in rows} == {warm_start.SHAPE_DIFFERS, warm_start.REBUILT}
    sentence = warm_start.summary(rows, "model.keras")
    assert sentence.startswith("started from model.keras: 0 of 4 layers with weights loaded; not loaded: ")
    assert "block1_conv (shape 3x3x3x1x8 + 8 in the source, 3x3x3x1x16 + 16 here)" in sentence

    (tmp_path / "notes.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a Keras weights file"):
        warm_start.read_layer_weights(tmp_path / "notes.h5")


def test_a_file_source_with_no_matching_layer_fails_the_run_with_a_sentence(lab_home, tmp_path):
    wider = models.build_model("tutorial3d", (12, 12, 12, 1), 2, ModelConfig(architecture="tutorial3d",
                                                                         width_multiplier=0.5))
    wider.save(tmp_path / "wide.keras")
    store = open_store()
    run_id = store.create_run(validation.validate(_config(init_from=str(tmp_path / "wide.keras"))),
                              status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FAILED
    assert summary["error"].startswith("No layer of wide.keras matches this tutorial3d model by name and shape")
    assert store.get_run(run_id).parent_run is None


def test_transfer_settings_are_checked_with_sentences(lab_home):
    problems = {p.field: p.message for p in validation.problems(_config(freeze_blocks=1))}
    assert "set training.init_from" in problems["training.freeze_blocks"]
    problems = {p.field: p.message for p in validation.problems(_config(init_from="run:1", freeze_blocks=3))}
    assert "tutorial3d has 2 blocks" in problems["training.freeze_blocks"]
    problems = {p.field: p.message for p in validation.problems(_config(pretext="rotation", augment=True))}
    assert "flip and rotate90" in problems["training.augmentations"]
    store = open_store()
    with pytest.raises(ConfigError, match="run #99, which does not exist"):
        warm_start.check_source(_config(init_from="run:99"), store)
    with pytest.raises(ConfigError, match="give a .keras or .h5 weights file"):
        warm_start.check_source(_config(init_from="weights.txt"), store)
    with pytest.raises(ConfigError, match="does not exist"):
        warm_start.check_source(_config(init_from="/nowhere/model.keras"), store)


def test_every_presets_block_count_matches_its_layers():
    for arch, count in warm_start.BLOCKS.items():
        shape = (32, 32, 32, 1) if arch != "kerasio3d" else (48, 48, 48, 1)
        model = models.build_model(arch, shape, 2, ModelConfig(architecture=arch, width_multiplier=0.125))
        blocks = {warm_start.block_of(layer.name) for layer in model.layers} - {None}
        assert blocks == set(range(1, count + 1)), arch


def test_rotations_keep_the_shape_and_are_told_apart():
    volume = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6, 1)
    plane = pretrain.quarter_turn_plane(volume.shape)
    assert plane == (1, 2)
    turned = [pretrain.rotate(volume, k, plane) for k in range(4)]
    assert all(t.shape == volume.shape for t in turned)
    assert len({t.tobytes() for t in turned}) == 4
    box = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4, 1)
    assert pretrain.quarter_turn_plane(box.shape) is None
    halves = [pretrain.rotate(box, k, None) for k in range(4)]
    assert all(h.shape == box.shape for h in halves) and len({h.tobytes() for h in halves}) == 4


def test_a_pretraining_run_is_recorded_and_a_later_run_starts_from_it(lab_home):
    store = open_store()
    pretrain_id = _train(store, _config("location", pretext="rotation", learning_rate=3e-3))
    run = store.get_run(pretrain_id)
    assert run.is_pretraining and run.num_classes == 4 and run.class_names == pretrain.QUARTER_TURNS
    assert run.split_sizes["train"] == 22  # volumes; each is seen in four rotations
    test = store.get_predictions(pretrain_id, "test")
    assert sorted(set(test["labels"].tolist())) == [0, 1, 2, 3]

    pretrained = _checkpoint_weights(pretrain_id)
    watch = WeightsAt()
    run_id = _train(store, _config("shape", init_from=f"run:{pretrain_id}", freeze_blocks=1,
                                   backbone_lr_scale=0.1), callbacks=[watch])
    assert _same(watch.begin["block1_conv"], pretrained["block1_conv"])
    assert watch.begin["predictions"][0].shape == (64, 1)  # the 4-way head rebuilt as one sigmoid unit
    assert store.get_run(run_id).parent_run == pretrain_id


def test_an_uploaded_weights_file_is_kept_once_and_a_bad_one_leaves_nothing(lab_home, tmp_path):
    small = models.build_model("tutorial3d", (12, 12, 12, 1), 2, ModelConfig(architecture="tutorial3d",
                                                                         width_multiplier=0.25))
    small.save(tmp_path / "encoder.keras")
    data = (tmp_path / "encoder.keras").read_bytes()
    saved = warm_start.save_upload("my encoder.keras", data)
    assert saved.parent == warm_start.uploads_dir() and saved.name.endswith("-my_encoder.keras")
    assert warm_start.save_upload("my encoder.keras", data) == saved
    assert [row["layer"] for row in warm_start.layer_rows(saved)] == [
        "block1_conv", "block2_conv", "head_dense", "predictions"]
    with pytest.raises(DataError, match="upload a .keras model or an .h5 weights file"):
        warm_start.save_upload("notes.txt", b"hello")
    with pytest.raises(DataError, match="not a Keras weights file"):
        warm_start.save_upload("broken.h5", b"not hdf5")
    assert sorted(path.name for path in warm_start.uploads_dir().iterdir()) == [saved.name]
