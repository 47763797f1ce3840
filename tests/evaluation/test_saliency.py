"""Saliency on a real trained run, and the evaluation of that run's stored predictions.

One tiny shapes3d "location" run (the classes differ only by which half of the
volume holds the cube) is trained once for the module: its stored confusion
matrices are checked against scikit-learn, and its saliency maps must peak on
the object for most correctly classified test samples.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from engine import datasets, evaluation, paths
from engine.config import RunConfig
from engine.evaluation import saliency
from engine.models import ARCHITECTURES
from engine.runs import RunStatus
from engine.store import open_store
from tests.conftest import point_workspace

SIZE = 16
OPTIONS = {"num_samples": 100, "size": SIZE, "mode": "location", "noise": 0.1}
# Voxels of margin around the cube's bounding box that still count as "on the object".
OBJECT_MARGIN = 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from engine.training import execute_run

    home = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as patch:
        point_workspace(patch, home / "runs", home / "data")
        config = RunConfig()
        config.data.dataset, config.data.options = "shapes3d", dict(OPTIONS)
        config.data.val_fraction = config.data.test_fraction = 0.25
        config.model.architecture = "tutorial3d"
        config.training.epochs, config.training.batch_size = 5, 16
        store = open_store()
        run_id = store.create_run(config, status=RunStatus.RUNNING)
        summary = execute_run(store, run_id)
        assert summary["status"] == RunStatus.FINISHED, summary
        yield store, run_id


def test_every_epoch_matches_sklearn_on_a_real_run(trained):
    store, run_id = trained
    run = store.get_run(run_id)
    epochs = store.prediction_epochs(run_id, "val")
    assert epochs == list(range(1, run.epochs_done + 1))
    for split, split_epochs in (("val", epochs), ("test", store.prediction_epochs(run_id, "test"))):
        for epoch in split_epochs:
            stored = store.get_predictions(run_id, split, epoch)
            result = evaluation.evaluate_run(store, run_id, split, epoch)
            predicted = stored["probabilities"].argmax(axis=1)
            np.testing.assert_array_equal(result.counts, confusion_matrix(stored["labels"], predicted, labels=[0, 1]))
            assert result.counts.sum() == run.split_sizes[split]
    test = evaluation.evaluate_run(store, run_id, "test", best=True)
    assert test.accuracy == pytest.approx(run.test_metrics["accuracy"], abs=1e-6)


def _on_object(volume: np.ndarray, cam: np.ndarray) -> tuple[bool, bool]:
    """(the map's peak lies in the object's half, within OBJECT_MARGIN voxels of its bounding box)."""
    peak = np.unravel_index(np.argmax(cam), cam.shape)
    voxels = np.nonzero(volume > 0.5)
    object_left = np.mean(voxels[2]) < SIZE / 2
    same_half = (peak[2] < SIZE / 2) == object_left
    inside = all(
        low - OBJECT_MARGIN <= position <= high + OBJECT_MARGIN
        for position, low, high in zip(peak, (v.min() for v in voxels), (v.max() for v in voxels))
    )
    return bool(same_half), bool(inside)


def test_saliency_peaks_on_the_object(trained):
    import keras

    store, run_id = trained
    run_dir = paths.run_dir(run_id)
    model = keras.models.load_model(run_dir / "best.keras")
    stored = store.get_predictions(run_id, "test")
    volumes = np.asarray(datasets.load_dataset("shapes3d", OPTIONS).x[stored["sample_ids"]])
    layer = ARCHITECTURES["tutorial3d"].last_conv_layer

    path = saliency.compute_and_store(
        run_dir, model, volumes, stored["sample_ids"], stored["probabilities"], layer, max_samples=200
    )
    maps = saliency.load_saliency(run_dir)
    assert path == run_dir / "saliency.npz"
    assert maps["maps"].shape == (len(stored["sample_ids"]), SIZE, SIZE, SIZE) and maps["layer"] == layer
    assert maps["method"] == "hirescam" and maps["maps"].max() <= 1.0

    fractions, raw_maps = {}, {}
    for method in ("hirescam", "gradcam"):
        raw_maps[method] = saliency.grad_cam(model, volumes, stored["probabilities"].argmax(1), layer, method)
        hits = np.array(
            [
                _on_object(volumes[index, ..., 0], datasets.resample(raw_maps[method][index], (SIZE,) * 3))
                for index in range(len(volumes))
                if stored["probabilities"][index].argmax() == stored["labels"][index]
            ]
        )
        fractions[method] = (len(hits), hits[:, 0].mean(), hits[:, 1].mean())
        print(f"{method}: {len(hits)} correct test samples; peak in the object's half {hits[:, 0].mean():.0%}, "
              f"on the object (±{OBJECT_MARGIN} voxels) {hits[:, 1].mean():.0%}")
    count, same_half, on_object = fractions["hirescam"]
    assert count >= 15
    assert same_half >= 0.8 and on_object >= 0.7

    # The stored map (float16, scaled to [0, 1]) is the full-precision map, up to rounding.
    first = datasets.resample(raw_maps["hirescam"][0], (SIZE,) * 3)
    stored_first = evaluation.map_for_sample(maps, int(stored["sample_ids"][0]))
    np.testing.assert_allclose(stored_first, first / first.max(), atol=2e-3)


def test_stored_maps_are_small_and_load_without_tensorflow(tmp_path):
    shape = (40, 48, 32)
    maps = np.random.default_rng(0).random((3, *saliency.storage_shape(shape))).astype(np.float16)
    np.savez_compressed(
        tmp_path / "saliency.npz", maps=maps, sample_ids=np.array([4, 9, 11]), target_classes=np.array([0, 1, 1]),
        volume_shape=np.array(shape), feature_shape=np.array([3, 4, 2]), layer=np.asarray("block2_conv"),
        method=np.asarray("hirescam"),
    )
    assert saliency.storage_shape(shape) == (13, 16, 11)
    code = (
        "import sys, json; from pathlib import Path; from engine.evaluation import load_saliency, map_for_sample; "
        f"s = load_saliency(Path({str(tmp_path)!r})); m = map_for_sample(s, 9, {shape}); "
        "print(json.dumps({'tf': 'tensorflow' in sys.modules or 'keras' in sys.modules, "
        "'shape': list(m.shape), 'missing': map_for_sample(s, 5) is None}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"tf": False, "shape": list(shape), "missing": True}
    assert saliency.load_saliency(tmp_path / "nowhere") is None


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_every_preset_yields_maps(tmp_path, architecture):
    """compute_and_store runs on each preset's last conv layer (sigmoid and softmax heads), untrained."""
    from engine import models

    spec = ARCHITECTURES[architecture]
    edge = max(spec.min_input_edge, 16)
    num_classes = 3 if architecture == "tutorial3d" else 2
    model = models.build_model(architecture, (edge, edge, edge, 1), num_classes)
    volumes = np.random.default_rng(0).random((3, edge, edge, edge, 1), dtype=np.float32)
    saliency.compute_and_store(tmp_path, model, volumes, np.array([7, 8, 9]), np.array([0, 1, 1]), spec.last_conv_layer, 2)
    maps = saliency.load_saliency(tmp_path)
    assert maps["maps"].shape == (2, 16, 16, 16) and maps["maps"].dtype == np.float32
    assert list(maps["sample_ids"]) == [7, 9] and maps["layer"] == spec.last_conv_layer
    assert np.isfinite(maps["maps"]).all() and 0.0 <= maps["maps"].min() and maps["maps"].max() <= 1.0
