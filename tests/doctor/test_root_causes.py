"""The doctor names the root cause: divergence against the chance-level loss, the root-cause order with
consequences linked to their cause, and underfitting told apart from overfitting (synthetic facts, no training)."""

from __future__ import annotations

import numpy as np

from engine import doctor
from engine.config import RunConfig
from engine.doctor import history
from engine.doctor.findings import (
    BN_ACCURACY_BATCH, BN_ACCURACY_INFERENCE, ROOT_CAUSE_ORDER, Finding, Severity, count, link_consequences,
    sort_findings,
)
from engine.runs import RunRecord, RunStatus
from tests.doctor.sick_runs import epoch_rows


def _record(config: RunConfig | None = None, class_names=("a", "b")) -> RunRecord:
    return RunRecord(id=1, name="r", status=RunStatus.FINISHED, config=config or RunConfig(), created_at=0.0,
                     epochs_total=10, class_names=tuple(class_names), num_classes=len(class_names),
                     split_sizes={"train": 120, "val": 40, "test": 40})


def _one_class_predictions(epochs, n=40, majority=24):
    labels = np.array([0] * majority + [1] * (n - majority))
    return {epoch: (labels, np.tile([[0.99, 0.01]], (n, 1))) for epoch in epochs}


MEMORISING = dict(  # the validation loss bottoms out at epoch 3 and climbs while training accuracy reaches 1.0
    loss=[0.6, 0.4, 0.25, 0.12, 0.05, 0.02], val_loss=[0.65, 0.55, 0.5, 0.6, 0.8, 1.0],
    accuracy=[0.7, 0.85, 0.93, 0.97, 0.99, 1.0], val_accuracy=[0.6, 0.66, 0.7, 0.66, 0.6, 0.55],
)


def test_a_loss_that_explodes_in_the_first_epoch_is_divergence_measured_against_chance():
    # Learning rate 1.0: the first epoch already ends at 4.7 million, and the loss never rises after it.
    config = RunConfig()
    config.training.learning_rate = 1.0
    rows = epoch_rows([4.7e6, 3.1e6], [5.2e6, 2.9e6], [0.5, 0.5], [0.6, 0.6])
    found = history.learning_rate(rows, config, num_classes=2)
    assert [f.id for f in found] == ["divergence"]
    divergence = found[0]
    assert divergence.severity == Severity.PROBLEM and divergence.evidence["chance_loss"] == np.log(2)
    assert "4.7e+06" in divergence.title and "chance-level" in divergence.title
    # Without the class count the old rule (a rise over the first epoch) cannot see it.
    assert history.learning_rate(rows, config) == []
    # A healthy loss near ln(K) is not divergence.
    assert history.learning_rate(epoch_rows([0.69, 0.6], [0.7, 0.65]), config, num_classes=2) == []
    # The whole diagnosis: divergence comes first and the one-class answers are its consequence.
    facts = doctor.RunFacts(run=_record(config), history=rows, val_predictions=_one_class_predictions((1, 2)))
    findings = doctor.diagnose_facts(facts)
    assert findings[0].id == "divergence" and findings[0].caused_by is None
    collapse = next(f for f in findings if f.id == "collapse")
    assert collapse.caused_by == "divergence" and "A consequence of 'divergence'" in collapse.suggestion
    assert "class weights" not in collapse.suggestion  # its own remedy is not offered as a separate fix
    assert count(findings, Severity.PROBLEM) == 1


def test_a_batchnorm_gap_comes_before_collapse_and_makes_overfitting_a_consequence():
    checks = {BN_ACCURACY_INFERENCE: (6, 0.50), BN_ACCURACY_BATCH: (6, 0.975)}
    config = RunConfig()
    config.training.early_stopping = False
    facts = doctor.RunFacts(run=_record(config), history=epoch_rows(**MEMORISING),
                            val_predictions=_one_class_predictions(range(1, 7)), checks=checks)
    findings = doctor.diagnose_facts(facts)
    ids = [f.id for f in findings]
    assert ids[0] == "batchnorm_gap" and findings[0].caused_by is None
    by_id = {f.id: f for f in findings}
    assert by_id["overfitting"].caused_by == "batchnorm_gap" and by_id["collapse"].caused_by == "batchnorm_gap"
    # Consequences follow their cause, and their advice is the cause's fix, not dropout and L2.
    assert ids.index("collapse") < ids.index("overfitting") and ids.index("batchnorm_gap") < ids.index("collapse")
    assert "dropout" not in by_id["overfitting"].suggestion and "batchnorm_gap" in by_id["overfitting"].suggestion
    assert count(findings, Severity.PROBLEM) == 1
    # Without the gap, the same curves are overfitting of their own, with its own advice.
    alone = doctor.diagnose_facts(doctor.RunFacts(run=_record(config), history=epoch_rows(**MEMORISING),
                                                  val_predictions={}))
    overfitting = next(f for f in alone if f.id == "overfitting")
    assert overfitting.caused_by is None and "dropout" in overfitting.suggestion


def test_a_model_that_never_learned_is_underfitting_not_overfitting():
    # The validation loss rises past its minimum, but the training accuracy never leaves chance (0.62 at best).
    rows = epoch_rows(loss=[0.70, 0.69, 0.68, 0.68, 0.67, 0.67], val_loss=[0.69, 0.68, 0.72, 0.78, 0.85, 0.9],
                    accuracy=[0.5, 0.55, 0.58, 0.6, 0.62, 0.61], val_accuracy=[0.5, 0.52, 0.5, 0.48, 0.5, 0.5])
    config = RunConfig()
    assert history.overfitting(rows, config) is not None  # the old rule alone called it overfitting
    found = history.fitting(rows, config, num_classes=2, train_counts=[60, 60])
    assert found.id == "underfitting" and found.severity == Severity.PROBLEM
    assert found.evidence["best_train_accuracy"] == 0.62 and found.evidence["chance_accuracy"] == 0.5
    assert "lr-find" in found.suggestion and "dropout" not in found.suggestion.split("remove")[0]
    findings = doctor.diagnose_facts(doctor.RunFacts(run=_record(config), history=rows, val_predictions={},
                                                     train_counts=[60, 60]))
    assert "underfitting" in {f.id for f in findings} and "overfitting" not in {f.id for f in findings}
    # A model that learned the training set (the memorising curves) stays overfitting.
    assert history.fitting(epoch_rows(**MEMORISING), config, num_classes=2, train_counts=[60, 60]).id == "overfitting"
    # Against an imbalanced training set, chance is the majority share: 0.80 train accuracy on 80/20 is not learning.
    imbalanced = epoch_rows(loss=[0.6, 0.5, 0.5, 0.5, 0.5], val_loss=[0.5, 0.45, 0.55, 0.65, 0.7],
                          accuracy=[0.78, 0.8, 0.8, 0.8, 0.8], val_accuracy=[0.8] * 5)
    assert history.fitting(imbalanced, config, num_classes=2, train_counts=[80, 20]).id == "underfitting"


def test_split_and_leakage_rank_above_the_batchnorm_gap_and_collapse():
    def finding(finding_id, severity=Severity.PROBLEM):
        return Finding(id=finding_id, severity=severity, title=f"{finding_id} title", suggestion="own advice")

    shuffled = [finding("overfitting"), finding("collapse"), finding("imbalance", Severity.WARNING),
                finding("batchnorm_gap"), finding("groups_across_splits"), finding("chance", Severity.WARNING),
                finding("single_class_split"), finding("divergence")]
    ordered = sort_findings(link_consequences(shuffled))
    roots = [f.id for f in ordered if f.caused_by is None]
    assert roots == ["divergence", "single_class_split", "groups_across_splits", "batchnorm_gap", "imbalance"]
    # Each consequence names the highest cause present and sits right after it.
    assert [(f.id, f.caused_by) for f in ordered[1:4]] == [
        ("collapse", "divergence"), ("overfitting", "divergence"), ("chance", "divergence")]
    assert [f.id for f in ordered][:4] == ["divergence", "collapse", "overfitting", "chance"]
    assert ROOT_CAUSE_ORDER.index("input_scale") < ROOT_CAUSE_ORDER.index("single_class_split") < \
        ROOT_CAUSE_ORDER.index("batchnorm_gap") < ROOT_CAUSE_ORDER.index("collapse") < \
        ROOT_CAUSE_ORDER.index("overfitting")
    # A warning-level gap explains nothing; a note is never a consequence.
    weak = link_consequences([finding("batchnorm_gap", Severity.WARNING), finding("overfitting")])
    assert all(f.caused_by is None for f in weak)


def test_inputs_far_from_unit_scale_explain_the_divergence():
    facts = doctor.RunFacts(run=_record(), history=epoch_rows([239.0, 410.0, 520.0], [300.0, 450.0, 600.0]),
                            val_predictions={}, input_range=(-1024.0, 1890.0))
    findings = doctor.diagnose_facts(facts)
    assert [(f.id, f.caused_by) for f in findings[:2]] == [("input_scale", None), ("divergence", "input_scale")]


def test_findings_round_trip_with_their_cause_and_old_stored_findings_read_as_root_causes():
    linked = Finding(id="overfitting", severity=Severity.PROBLEM, title="t", suggestion="s",
                     evidence={"best_epoch": 3}, epoch=3, caused_by="batchnorm_gap")
    assert Finding.from_dict(linked.to_dict()) == linked
    old = {"id": "overfitting", "severity": "warning", "title": "t", "suggestion": "s", "evidence": {}, "epoch": 2}
    assert Finding.from_dict(old).caused_by is None


# ------------------------------------------------------------------ near-duplicates
def _shifted(volume: np.ndarray, shift: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.shift(volume, (shift, shift, shift, 0), order=0, mode="nearest")


def _built_in(name: str, options: dict):
    from engine import datasets

    dataset = datasets.load_dataset(name, options)
    splits = datasets.make_splits(dataset, 0.2, 0.2, seed=0)
    return np.asarray(dataset.x), {"train": splits.train, "val": splits.val, "test": splits.test}


def _plant(x, parts, copies):
    """x with ``copies`` (volumes) appended to the test split."""
    extra = np.arange(len(x), len(x) + len(copies))
    return np.concatenate([x, np.stack(copies)]), parts | {"test": np.concatenate([parts["test"], extra])}


def test_copies_shifted_by_a_voxel_or_with_5_grey_levels_of_noise_are_near_duplicates(lab_home):
    from engine.doctor import data

    rng = np.random.default_rng(0)
    for name in ("shapes3d", "phantom_lesions"):
        x, parts = _built_in(name, {"num_samples": 40, "size": 16})
        # Distinct samples of the built-in set: no near-duplicate (no false positive).
        assert "near_duplicates" not in {f.id for f in data.leakage_findings(x, parts, None)}, name
        one, two, three = (int(i) for i in parts["train"][:3])
        grey = 5 / 255 * data.intensity_range(x[two][..., 0])
        copies = [_shifted(x[one], 1),  # shifted by one voxel along each axis
                  x[two] + rng.normal(0, grey, x[two].shape).astype(np.float32),  # noise of 5 grey levels
                  _shifted(x[three], -1) + rng.normal(0, grey, x[three].shape).astype(np.float32)]  # both
        planted, planted_parts = _plant(x, parts, copies)
        found = {f.id: f for f in data.leakage_findings(planted, planted_parts, None)}
        near = found["near_duplicates"]
        assert near.evidence["pairs"] == {"train-test": 3}, name
        extra = len(x)
        assert set(near.evidence["examples"]) == {(one, extra), (two, extra + 1), (three, extra + 2)}, name
        shifts = {tuple(a["pair"]): a["shift_voxels"] for a in near.evidence["alignments"]}
        assert shifts[(one, extra)] == [1, 1, 1] and shifts[(two, extra + 1)] == [0, 0, 0], name
        assert "duplicates_across_splits" not in found  # none is an exact copy


def test_the_aligned_difference_reads_the_shift_and_the_noise_level():
    from engine.doctor import data

    rng = np.random.default_rng(3)
    volume = np.zeros((12, 12, 12), dtype=np.float32)
    volume[3:8, 4:9, 2:6] = 1.0
    moved = np.roll(volume, (2, -1, 1), axis=(0, 1, 2))
    difference, shift = data.aligned_difference(volume, moved)
    assert difference == 0.0 and shift == (2, -1, 1)
    noisy = volume + rng.normal(0, 0.02, volume.shape).astype(np.float32)
    difference, _ = data.aligned_difference(volume, noisy)
    assert 0.015 < difference < 0.025
    # A shift beyond the tolerance or noise above it is not a near-duplicate.
    assert data.aligned_difference(volume, np.roll(volume, 3, axis=0))[0] > data.NEAR_DUPLICATE_DIFFERENCE
    assert data.aligned_difference(volume, volume + rng.normal(0, 0.06, volume.shape))[0] > \
        data.NEAR_DUPLICATE_DIFFERENCE


# ------------------------------------------------------------------ groups by name
def test_group_leakage_names_the_groups_by_the_csv_ids_and_dicom_imports_keep_the_patient_id(lab_home, tmp_path):
    from engine import datasets
    from engine.datasets import ImportOptions, Splits
    from tests.datasets import scans

    root = tmp_path / "nii"
    rows = ["file,label,patient"]
    for index in range(16):
        scans.write_nifti(root / f"scan{index:03d}.nii.gz",
                          np.random.default_rng(index).random((6, 6, 6)).astype(np.float32))
        rows.append(f"scan{index:03d}.nii.gz,{'ab'[index % 2]},P{index // 2:02d}")  # two scans per patient
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    datasets.import_dataset(root, "patients", ImportOptions(labels_csv=str(tmp_path / "labels.csv")))
    dataset = datasets.load_dataset("patients")
    manifest = datasets.imported.manifest("patients")
    names = {sample["source"].split("/")[-1]: name for sample, name in zip(manifest["samples"], dataset.group_labels())}
    assert names["scan000.nii.gz"] == names["scan001.nii.gz"] == "P00" and names["scan015.nii.gz"] == "P07"
    # A split by sample, not by patient: P00-P03 have one scan in training and one in validation.
    labels = dataset.group_labels()
    first_scans = [i for i in range(16)
                   if labels[i] in {"P00", "P01", "P02", "P03"} and i == list(labels).index(labels[i])]
    second_scans = [i for i in range(16) if labels[i] in {"P00", "P01", "P02", "P03"} and i not in first_scans]
    rest = [i for i in range(16) if labels[i] not in {"P00", "P01", "P02", "P03"}]
    splits = Splits(np.array(first_scans + rest[:6]), np.array(second_scans), np.array(rest[6:]))
    found = {f.id: f for f in doctor.run_data_findings(dataset, splits, class_weight="balanced")}
    groups = found["groups_across_splits"]
    assert groups.evidence["shared_groups"] == {"train-val": ["P00", "P01", "P02", "P03"]}
    assert "P00-P03" in groups.title and "0, 1" not in groups.title

    dicom = tmp_path / "dicom"
    for label in ("healthy", "lesion"):
        for patient in range(2):
            scans.write_dicom_series(dicom / label / f"p{patient}", scans.ramp_slices(4, offset=patient),
                                     patient=f"PID-{label}-{patient}")
    datasets.import_dataset(dicom, "dicom_patients", ImportOptions())
    loaded = datasets.load_dataset("dicom_patients")
    assert sorted(loaded.group_labels()) == ["PID-healthy-0", "PID-healthy-1", "PID-lesion-0", "PID-lesion-1"]


def test_a_dataset_without_names_shows_its_group_codes_and_old_imports_still_load():
    from engine.datasets import imported

    assert imported.group_names({"samples": [{"group": "A"}, {"group": None}, {"group": "A"}]},
                                np.array([0, 1, 0])) == ["A", "sample 1"]
    assert imported.group_names({"samples": []}, np.array([0, 1])) is None
    rng = np.random.default_rng(0)
    from engine.doctor import data

    found = data.leakage_findings(rng.normal(size=(6, 4, 4, 4, 1)).astype(np.float32),
                                  {"train": np.arange(3), "val": np.arange(3, 6)}, np.array([0, 1, 2, 0, 1, 5]))
    assert found[-1].evidence["shared_groups"] == {"train-val": ["0", "1"]}
