"""Predicting new scans with a trained run: same numbers as the dataset path, warnings, TTA, ensembles, exports.

One tiny imported DICOM dataset (two classes, 10x10x6 series resampled to 8^3)
and one run trained on it with flip augmentation, plus a 2-fold cross-validation
group on the built-in shapes3d, are made once for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import datasets, paths
from engine.config import RunConfig
from engine.datasets import imported
from engine.store import open_store
from tests.cli_in_process import run_cli
from tests.conftest import point_workspace
from tests.datasets.scans import write_dicom_series
from tests.inference import tiny_lab
from tests.inference.tiny_lab import EDGE, SERIES_SHAPE, _series, _train


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as patch:
        point_workspace(patch, home / "runs", home / "data")
        store = open_store()
        source, run_id = tiny_lab.dicom_run(home, store)

        folds = RunConfig()
        folds.data.dataset, folds.data.options = "shapes3d", {"num_samples": 24, "size": EDGE}
        folds.data.folds, folds.data.test_fraction = 2, 0.25
        folds.model.architecture, folds.model.padding = "tutorial3d", "same"
        folds.training.epochs, folds.training.batch_size = 1, 8
        from engine.datasets import splits

        group = splits.new_group_id(splits.CV_PREFIX)
        fold_ids = [_train(store, each, group) for each in splits.fold_configs(folds)]
        yield {"home": home, "source": source, "store": store, "run": run_id, "group": group, "folds": fold_ids}


def _predict_json(capsys, *argv) -> dict:
    code, out, err = run_cli(capsys, "predict", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_dicom_series_gets_the_probabilities_of_the_dataset_path(lab, capsys):
    """The series of a test sample, predicted from its files, gets the probabilities stored for it in training."""
    store, run_id = lab["store"], lab["run"]
    stored = store.get_predictions(run_id, "test")
    manifest = imported.manifest("scans")
    checked = 0
    for sample_id, probabilities in zip(stored["sample_ids"], stored["probabilities"]):
        series = lab["source"] / manifest["samples"][int(sample_id)]["source"]
        report = _predict_json(capsys, str(run_id), str(series))
        (case,) = report["cases"]
        np.testing.assert_allclose(case["probabilities"], probabilities, atol=1e-5)
        assert case["warnings"] == []
        assert case["predicted"] == manifest["class_names"][int(np.argmax(probabilities))]
        checked += 1
    assert checked >= 4
    assert report["threshold"] == 0.5 and report["class_names"] == ["lesion", "normal"]


def test_a_zip_of_a_series_reads_like_its_folder(lab, capsys, tmp_path):
    import shutil

    series = next((lab["source"] / "lesion").iterdir())
    archive = shutil.make_archive(str(tmp_path / "one"), "zip", root_dir=series.parent, base_dir=series.name)
    from_folder = _predict_json(capsys, str(lab["run"]), str(series))["cases"][0]["probabilities"]
    from_zip = _predict_json(capsys, str(lab["run"]), archive)["cases"][0]["probabilities"]
    np.testing.assert_allclose(from_zip, from_folder, atol=1e-7)


def _model_probabilities(run_id: int, volumes: np.ndarray) -> np.ndarray:
    import keras

    model = keras.models.load_model(paths.run_dir(run_id) / "best.keras", compile=False)
    positive = model.predict(volumes, verbose=0).reshape(-1)
    return np.stack([1 - positive, positive], axis=1)


def test_tta_4_is_the_mean_and_spread_over_the_scan_and_its_three_flips(lab, capsys, tmp_path):
    series = next((lab["source"] / "normal").iterdir())
    arrays = tmp_path / "arrays.npz"
    report = _predict_json(capsys, str(lab["run"]), str(series), "--tta", "4", "--arrays", str(arrays))
    (case,) = report["cases"]
    assert case["tta"]["views"] == ["identity", "flip D", "flip H", "flip W"]
    with np.load(arrays) as saved:
        volume = saved["volumes"][0]
    views = np.stack([volume, volume[::-1], volume[:, ::-1], volume[:, :, ::-1]])
    expected = _model_probabilities(lab["run"], views)
    np.testing.assert_allclose(case["probabilities"], expected.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(case["tta"]["std"], expected.std(axis=0), atol=1e-5)
    np.testing.assert_allclose(case["tta"]["per_view"], expected, atol=1e-5)


def test_tta_is_refused_beyond_what_the_augmentation_allows(lab, capsys):
    series = next((lab["source"] / "normal").iterdir())
    code, _, err = run_cli(capsys, "predict", str(lab["run"]), str(series), "--tta", "9")
    assert code == 2 and "allows 8 test-time views" in err
    code, _, err = run_cli(capsys, "predict", "--ensemble", lab["group"], str(series), "--tta", "2")
    assert code == 2 and "without flip or rotate90 augmentation" in err


def test_saliency_map_for_the_predicted_class(lab, capsys):
    series = next((lab["source"] / "lesion").iterdir())
    (case,) = _predict_json(capsys, str(lab["run"]), str(series), "--saliency")["cases"]
    cam = np.asarray(case["saliency"]["map"])
    assert cam.shape == (EDGE, EDGE, EDGE) and case["saliency"]["target"] == case["predicted"]
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)


def _rewrite(folder: Path, **tags) -> None:
    import pydicom

    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        for name, value in tags.items():
            setattr(dataset, name, value)
        dataset.save_as(path)


def test_a_scan_of_another_modality_or_spacing_gets_a_warning(lab, capsys, tmp_path):
    rng = np.random.default_rng(5)
    ct = tmp_path / "ct"
    write_dicom_series(ct, _series(rng, True), positions=[2.0 * k for k in range(SERIES_SHAPE[0])])
    _rewrite(ct, Modality="CT")
    coarse = tmp_path / "coarse"
    write_dicom_series(coarse, _series(rng, True), positions=[9.0 * k for k in range(SERIES_SHAPE[0])])
    report = _predict_json(capsys, str(lab["run"]), str(ct), str(coarse))
    by_path = {Path(case["path"]).name: case for case in report["cases"]}
    assert len(report["cases"]) == 2
    (ct_case,) = [c for c in report["cases"] if c["modality"] == "CT"]
    assert any("is CT, but run" in w and "trained on MR scans only" in w for w in ct_case["warnings"])
    (coarse_case,) = [c for c in report["cases"] if c is not ct_case]
    assert any("far from the training scans' 2-2 x 1-1 x 1-1 mm" in w for w in coarse_case["warnings"]), by_path
    code, out, _ = run_cli(capsys, "predict", str(lab["run"]), str(ct))
    assert code == 0 and "warning:" in out


def test_a_volume_of_the_wrong_shape_gets_a_sentence(lab, capsys, tmp_path):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x=np.random.default_rng(0).random((1, 10, 10, 10)).astype(np.float32))
    code, out, err = run_cli(capsys, "predict", str(lab["folds"][0]), str(wrong))
    assert code == 2 and out == ""
    assert f"has shape 10x10x10 but run {lab['folds'][0]}'s model takes 8x8x8" in err
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "predict", str(lab["run"]), str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err


def test_the_ensemble_averages_its_folds(lab, capsys, tmp_path):
    store = lab["store"]
    dataset = datasets.load_dataset("shapes3d", {"num_samples": 24, "size": EDGE})
    members = [store.get_predictions(run_id, "test") for run_id in lab["folds"]]
    test_ids = members[0]["sample_ids"]
    assert all(np.array_equal(m["sample_ids"], test_ids) for m in members)  # the folds share the test split
    volumes = tmp_path / "volumes.npz"
    np.savez(volumes, x=np.asarray(dataset.x[np.sort(test_ids)]))
    report = _predict_json(capsys, "--ensemble", lab["group"], str(volumes))
    order = np.argsort(test_ids)
    expected = np.mean([m["probabilities"][order] for m in members], axis=0)
    got = np.asarray([case["probabilities"] for case in report["cases"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert report["run_ids"] == lab["folds"]
    for position, member in enumerate(report["cases"][0]["members"]):
        np.testing.assert_allclose(member["probabilities"], members[position]["probabilities"][order[0]], atol=1e-5)

    code, out, err = run_cli(capsys, "evaluate", "--ensemble", lab["group"], "--json")
    assert code == 0, err
    result = json.loads(out)
    from engine.evaluation import evaluate_predictions

    ensemble = evaluate_predictions(members[0]["labels"], np.mean([m["probabilities"] for m in members], axis=0),
                                    ["cube", "ball"], positive_class="ball")
    assert result["ensemble"]["accuracy"] == pytest.approx(ensemble.accuracy)
    assert [m["run_id"] for m in result["members"]] == lab["folds"]
    code, out, _ = run_cli(capsys, "evaluate", "--ensemble", lab["group"])
    assert code == 0 and "ensemble" in out and f"run {lab['folds'][0]}" in out
    code, _, err = run_cli(capsys, "evaluate", "--ensemble", "cv-nothing")
    assert code == 2 and "There is no group" in err


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "onnx"])
def test_exports_agree_with_the_lab_on_the_test_split(lab, capsys, tmp_path, fmt):
    from engine.inference import export

    if fmt == "onnx" and not export.onnx_available():
        pytest.skip("tf2onnx is not installed (pip install -r requirements-export.txt)")
    store, run_id = lab["store"], lab["run"]
    out = tmp_path / fmt
    code, stdout, err = run_cli(capsys, "export", str(run_id), "--format", fmt, "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["path"] == str(out)
    description = json.loads((out / "preprocessing.json").read_text())
    assert description["input_shape"] == [None, EDGE, EDGE, EDGE, 1]
    assert description["class_names"] == ["lesion", "normal"]
    assert description["import_options"]["shape"] == [EDGE, EDGE, EDGE]
    assert description["normalization"] == {"import": "minmax", "training": "zscore"}
    assert description["spacing_mm"] == [[2.0, 2.0], [1.0, 1.0], [1.0, 1.0]]

    stored = store.get_predictions(run_id, "test")
    dataset = datasets.load_dataset("scans")
    volumes = datasets.normalize(np.asarray(dataset.x[stored["sample_ids"]]), "zscore")
    if fmt == "keras":
        import keras

        outputs = keras.models.load_model(out / "model.keras", compile=False).predict(volumes, verbose=0)
    elif fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(out / "savedmodel"))  # kept: serve() needs its variables alive
        outputs = loaded.serve(volumes).numpy()
    else:
        onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
        session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {"volume": volumes})[0]
    np.testing.assert_allclose(outputs.reshape(-1), stored["probabilities"][:, 1], atol=1e-4)


def test_export_refuses_an_existing_target_and_writes_a_zip(lab, capsys, tmp_path):
    import zipfile

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    code, _, err = run_cli(capsys, "export", str(lab["run"]), "--format", "keras", "--out", str(tmp_path / "taken"))
    assert code == 2 and "already exists" in err
    target = tmp_path / "model.zip"
    code, _, err = run_cli(capsys, "export", str(lab["run"]), "--format", "keras", "--out", str(target))
    assert code == 0, err
    with zipfile.ZipFile(target) as archive:
        assert {"model.keras", "preprocessing.json"} <= {Path(n).name for n in archive.namelist()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_is_one_self_contained_html_file_with_every_section(lab, capsys, tmp_path):
    from engine.evaluation import model_card

    store, run_id = lab["store"], lab["run"]
    store.update_run(run_id, name="<script>alert('name')</script>")
    out = tmp_path / "report.html"
    code, stdout, err = run_cli(capsys, "report", str(run_id), "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["path"] == str(out)
    text = out.read_text()
    for section in model_card.SECTIONS:
        assert f"<section id='{section}'>" in text
    assert "<script>alert('name')</script>" not in text and "&lt;script&gt;alert(" in text
    assert text.count("plotly.js v") == 1 and "<script src=" not in text  # plotly.js inline, once
    assert "best epoch" in text and "Wilson" in text and "tensorflow" in text
    code, _, err = run_cli(capsys, "report", str(lab["folds"][0]), "--out", str(tmp_path / "fold.html"))
    assert code == 0, err


def test_a_nifti_file_for_a_dicom_trained_run_is_predicted_with_a_warning(lab, capsys, tmp_path):
    from tests.datasets.scans import write_nifti

    path = tmp_path / "scan.nii.gz"
    write_nifti(path, _series(np.random.default_rng(3), True).astype(np.float32))
    (case,) = _predict_json(capsys, str(lab["run"]), str(path))["cases"]
    assert case["path"] == "scan.nii.gz" and case["volume_shape"] == [EDGE, EDGE, EDGE, 1]
    assert any("is a nifti file, but run" in w and "trained on dicom scans" in w for w in case["warnings"])
    code, _, err = run_cli(capsys, "predict", str(lab["run"]), "")
    assert code == 2 and "A path is empty" in err
