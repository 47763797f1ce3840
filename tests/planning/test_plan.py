"""`plan`: a complete, valid config from the dataset's and the machine's fingerprint, each choice with a reason.

Every built-in dataset and an imported CT-like and MR-like set (tiny DICOM series written here) get a plan
that the engine's own validation accepts; one tiny planned run trains end to end from the CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import datasets, planning, validation
from engine.datasets import ImportOptions
from engine.datasets.preprocess import foreground_mask, normalize
from engine.planning import fingerprint
from tests.cli_in_process import run_cli
from tests.datasets import scans

# The fields every plan decides, whatever the dataset.
ALWAYS = {"data.normalization", "model.architecture", "model.width_multiplier", "training.batch_size",
          "training.class_weight", "training.augment", "training.early_stopping", "training.epochs",
          "training.learning_rate"}


def _check(plan: planning.Plan) -> None:
    """The plan's config passes the engine's validation, and each decided field has a one-sentence reason."""
    assert validation.problems(plan.config) == []
    fields = {choice.field for choice in plan.choices}
    assert ALWAYS <= fields, ALWAYS - fields
    for choice in plan.choices:
        assert choice.reason and "\n" not in choice.reason, choice
        section, _, name = choice.field.partition(".")
        if not name.startswith("options."):
            assert getattr(getattr(plan.config, section), name) == choice.value, choice
    assert plan.config.training.augment and plan.config.training.early_stopping
    json.dumps(plan.to_dict())  # the CLI's --json and the dashboard read this


@pytest.mark.parametrize("dataset, options", [
    ("digits3d", {}),
    ("phantom_lesions", {}),
    ("shapes3d", {}),
])
def test_every_builtin_gets_a_valid_plan(lab_home, dataset, options):
    plan = planning.make_plan(dataset, options, lr_test=False)
    _check(plan)
    width_reason = plan.reason("model.width_multiplier")
    assert "per training sample" in width_reason
    if dataset == "phantom_lesions":
        # The set that sat at one class with momentum 0.99: 18 batches per epoch get a faster momentum.
        assert plan.config.data.normalization == "zscore_fg"
        assert plan.config.model.batchnorm_momentum <= 0.9
        assert plan.config.data.folds is None  # 400 samples: one validation split
    if dataset == "shapes3d":
        assert plan.config.data.folds == planning.MAX_FOLDS  # 96 samples: cross-validated


def _ct_set(root, patients: int = 8) -> None:
    scans.write_ct_patients(root / "normal", {f"N{i}": "normal" for i in range(patients)})
    scans.write_ct_patients(root / "lesion", {f"L{i}": "lesion" for i in range(patients)}, seed=1)


def _mr_set(root, patients: int = 8) -> None:
    """Class folders of MR series: a bright ellipsoid head (arbitrary units, hundreds) in zero air."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[0:8, 0:16, 0:16]
    head = ((z - 3.5) / 4) ** 2 + ((y - 7.5) / 6) ** 2 + ((x - 7.5) / 6) ** 2 <= 1
    for label in ("healthy", "lesion"):
        for index in range(patients):
            volume = np.where(head, 400 + rng.normal(0, 30, head.shape), 0.0)
            if label == "lesion":
                volume[3:5, 6:9, 8:11] += 300
            scans.write_dicom_series(root / label / f"{label}{index}", np.round(volume).astype(np.int16),
                                     patient=f"{label}{index}", modality="MR", shuffle_seed=None)


def test_an_imported_ct_set_keeps_its_window_and_gets_a_valid_plan(lab_home, tmp_path):
    _ct_set(tmp_path / "ct")
    datasets.import_dataset(tmp_path / "ct", "ct_like")  # auto: the soft-tissue window, scaled to [0, 1]
    plan = planning.make_plan("ct_like", lr_test=False)
    _check(plan)
    assert plan.dataset.modality == "CT" and "DICOM" in plan.dataset.modality_source
    assert plan.dataset.spacing == [2.5, 1.0, 1.0]
    assert plan.config.data.normalization == "none"
    assert "soft_tissue window" in plan.reason("data.normalization")
    assert plan.config.data.folds is not None  # 16 samples


def test_a_ct_set_imported_without_a_window_is_planned_with_a_note(lab_home, tmp_path):
    _ct_set(tmp_path / "ct")
    datasets.import_dataset(tmp_path / "ct", "ct_raw", ImportOptions(normalization="none"))
    plan = planning.make_plan("ct_raw", lr_test=False)
    _check(plan)
    assert plan.config.data.normalization == "zscore"
    assert any("--window soft_tissue" in note for note in plan.notes)


@pytest.mark.parametrize("import_normalization", [None, "none"])
def test_an_imported_mr_set_is_z_scored_over_its_foreground(lab_home, tmp_path, import_normalization):
    _mr_set(tmp_path / "mr")
    datasets.import_dataset(tmp_path / "mr", "mr_like", ImportOptions(normalization=import_normalization))
    plan = planning.make_plan("mr_like", lr_test=False)
    _check(plan)
    assert plan.dataset.modality == "MR"
    assert plan.config.data.normalization == "zscore_fg"
    assert "foreground" in plan.reason("data.normalization")
    if import_normalization is None:  # the import z-scored: the foreground z-score replaces it exactly
        assert "replaces the import's normalization zscore" in plan.reason("data.normalization")


def test_foreground_z_score_uses_the_head_not_the_air_and_ignores_a_prior_scaling():
    rng = np.random.default_rng(0)
    volume = np.zeros((12, 12, 12), np.float32)
    volume[3:9, 3:9, 3:9] = 500 + rng.normal(0, 20, (6, 6, 6))
    mask = foreground_mask(volume)
    assert mask.sum() == 6**3
    out = normalize(volume[np.newaxis, ..., np.newaxis], "zscore_fg")[0, ..., 0]
    assert abs(out[mask].mean()) < 1e-4 and abs(out[mask].std() - 1) < 1e-3
    rescaled = normalize((3 * volume - 7)[np.newaxis, ..., np.newaxis], "zscore_fg")[0, ..., 0]
    np.testing.assert_allclose(rescaled, out, atol=1e-3)


def test_imbalance_gets_class_weights_and_memory_caps_the_batch(lab_home, monkeypatch):
    options = {"num_samples": 320, "size": 16, "positive_fraction": 0.15}
    plan = planning.make_plan("phantom_lesions", options, lr_test=False)
    assert plan.config.training.class_weight == "balanced"
    assert "imbalanced" in plan.reason("training.class_weight")
    roomy = plan.config.training.batch_size
    # A machine with little free memory: the batch shrinks to what fits, and the reason says so.
    monkeypatch.setattr(fingerprint, "machine", lambda: fingerprint.MachineFingerprint(
        device="CPU (test)", gpu=False, memory_bytes=12 * 2**20, bfloat16_cpu=False))
    small = planning.make_plan("phantom_lesions", options, lr_test=False)
    assert small.config.training.batch_size < roomy
    assert "CPU (test)" in small.reason("training.batch_size")


def test_a_volume_over_the_cap_is_resampled_keeping_its_aspect_ratio(lab_home):
    plan = planning.make_plan("shapes3d", {"num_samples": 24, "size": 64}, lr_test=False)
    assert plan.config.data.options["size"] == 64  # 64^3 is the CPU cap: kept
    machine = fingerprint.MachineFingerprint(device="CPU", gpu=False, memory_bytes=2**34, bfloat16_cpu=False)
    data = fingerprint.DatasetFingerprint(
        dataset="x", options={}, imported=True, num_samples=100, num_classes=2, class_names=["a", "b"],
        class_counts=[50, 50], volume_shape=[40, 256, 256, 1], spacing=[5.0, 0.8, 0.8], modality="MR",
        modality_source="MR", intensity={}, preprocessing={}, predefined_splits={}, has_groups=False)
    planner = planning._Planner(data, machine, seed=0)
    planner.shape()
    note, = planner.notes
    # 200 x 205 x 205 mm: isotropic 3.2 mm voxels would be 63 x 64 x 64, but the depth is never upsampled
    # past its 40 stored slices; at most 64^3 voxels.
    assert "--shape 40 64 64" in note and "(this plan keeps the stored shape)" in note


def test_the_cli_plans_with_a_range_test_saves_the_config_and_a_planned_run_trains(lab_home, tmp_path, capsys):
    saved = tmp_path / "planned.json"
    # 300 samples: one validation split (fewer would plan k folds, k runs to train here).
    code, out, err = run_cli(capsys, "plan", "shapes3d", "--option", "num_samples=300", "--option", "size=8",
                             "--lr-steps", "12", "--save", str(saved), "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["lr_test"]["steps"] >= 3 and "range test" in next(
        c["reason"] for c in plan["choices"] if c["field"] == "training.learning_rate")
    assert json.loads(saved.read_text()) == plan["config"]
    # The planned config launches: trained in the foreground, for one epoch to keep the test short.
    code, out, err = run_cli(capsys, "train", "--config", str(saved), "--epochs", "1", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["test"]["accuracy"] is not None
    from engine.store import open_store

    run = open_store().get_run(summary["run_id"])
    trained = run.config.to_dict()
    assert trained["training"]["epochs"] == 1
    trained["training"]["epochs"] = plan["config"]["training"]["epochs"]
    trained["data"]["positive_class"] = None  # the worker records the class it used
    assert trained == plan["config"]


def test_a_mistake_is_one_sentence(lab_home, capsys):
    code, _, err = run_cli(capsys, "plan", "no_such_set", "--no-lr-test")
    assert code == 2 and err.startswith("error: ") and "valid datasets are" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "plan", "shapes3d", "--option", "size=2", "--no-lr-test")
    assert code == 2 and "data.options.size" in err
