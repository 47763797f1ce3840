"""The doctor on real (tiny) trained runs: the worker's BatchNorm check, and one run diagnosed end to end."""

from __future__ import annotations

import pytest

from engine import doctor, validation
from engine.config import RunConfig
from engine.doctor.findings import BN_ACCURACY_BATCH, BN_ACCURACY_INFERENCE, CHECK_KIND, PARAMS_CHECK, Severity
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import execute_run


def _train(config: dict):
    store = open_store()
    run_id = store.create_run(validation.validate(RunConfig.from_dict(config)), status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FINISHED, summary
    return store, run_id


def test_a_batchnorm_network_with_lagging_moving_statistics_shows_the_train_inference_gap(lab_home):
    # 4 steps per epoch for 3 epochs with momentum 0.99: the moving statistics keep ~89 % of their
    # initial values (mean 0, variance 1) while the raw intensities (not normalised) are far from them.
    store, run_id = _train({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 48, "size": 12, "mode": "location"}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, "batchnorm": True,
                  "batchnorm_momentum": 0.99},
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3},
    })
    checks = {row["name"]: row for row in store.get_metrics(run_id, kind=CHECK_KIND)}
    assert checks[PARAMS_CHECK]["epoch"] == 0 and checks[PARAMS_CHECK]["value"] > 0
    inference, batch_stats = checks[BN_ACCURACY_INFERENCE]["value"], checks[BN_ACCURACY_BATCH]["value"]
    print(f"\nBN check: inference-mode accuracy {inference:.3f}, batch-statistics accuracy {batch_stats:.3f}")
    assert batch_stats - inference >= 0.15

    findings = doctor.diagnose(store, run_id)
    gap = next(f for f in findings if f.id == "batchnorm_gap")
    assert gap.severity == Severity.PROBLEM and gap.epoch == 3
    assert gap.evidence["accuracy_inference"] == inference and gap.evidence["steps_per_epoch"] == 4
    assert any("momentum 0.99" in cause for cause in gap.evidence["likely_causes"])
    # End to end: the split file and the dataset were read (leakage and split checks ran, nothing found),
    # and the capacity finding knows the parameter count.
    assert {"capacity", "chance"} <= {f.id for f in findings}
    assert not {"duplicates_across_splits", "groups_across_splits", "single_class_split"} & {f.id for f in findings}


@pytest.mark.slow  # two trainings and two imports: about 80 s on 2 cores
def test_raw_hounsfield_units_are_the_first_finding_and_the_ct_window_removes_it(lab_home, tmp_path):
    # The CT run, tiny: patient folders of a CT series each, imported once as raw HU and once with
    # the import's default (a soft-tissue window scaled to [0, 1]), 2 epochs each.
    from engine import datasets
    from engine.datasets import ImportOptions
    from tests.datasets import scans

    diagnoses = {f"P{index:02d}": ("lesion" if index % 2 else "normal") for index in range(1, 21)}
    scans.write_ct_patients(tmp_path / "patients", diagnoses, count=16, edge=16)
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(f"{p},{label}\n" for p, label in diagnoses.items()))
    labels = str(tmp_path / "labels.csv")
    datasets.import_dataset(tmp_path / "patients", "ct_raw", ImportOptions(labels_csv=labels, normalization="none"))
    datasets.import_dataset(tmp_path / "patients", "ct_window", ImportOptions(labels_csv=labels))
    first = {}
    for name in ("ct_raw", "ct_window"):
        store, run_id = _train({
            "data": {"dataset": name, "normalization": "none"},
            "model": {"architecture": "tutorial3d", "width_multiplier": 0.5},
            "training": {"epochs": 2, "batch_size": 4},
        })
        first[name] = store.epoch_history(run_id)[0]["loss"]
        findings = doctor.diagnose(store, run_id)
        if name == "ct_raw":
            assert findings[0].id == "input_scale", [f.id for f in findings]
            evidence = findings[0].evidence
            assert evidence["input_min"] < -900 and evidence["input_max"] > 50 and evidence["first_loss"] == first[name]
        else:
            assert "input_scale" not in {f.id for f in findings}
    print(f"\nfirst training loss: raw HU {first['ct_raw']:.3g}, soft-tissue window {first['ct_window']:.3g}")
    assert first["ct_window"] < 10
