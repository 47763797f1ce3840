"""The doctor finds each problem built on purpose (synthetic histories, predictions and datasets, no training),
and a healthy run gets no problem or warning."""

from __future__ import annotations

import numpy as np
import pytest

from engine import doctor
from engine.config import RunConfig
from engine.datasets import Dataset, Splits
from engine.doctor import data, predictions
from engine.doctor.findings import CHECK_KIND, PARAMS_CHECK, Severity
from engine.runs import RunRecord, RunStatus
from engine.store import open_store
from tests.fake_runs import predictions_run
from tests.doctor.sick_runs import epoch_rows


def _record(config: RunConfig | None = None, **fields) -> RunRecord:
    fields.setdefault("class_names", ("a", "b"))
    fields.setdefault("num_classes", len(fields["class_names"]))
    return RunRecord(id=1, name="r", status=RunStatus.FINISHED, config=config or RunConfig(), created_at=0.0,
                     epochs_total=10, **fields)


def _ids(findings, *severities):
    return {f.id for f in findings if not severities or f.severity in severities}


def _dataset(x, y, groups=None, predefined=None, class_names=("a", "b")) -> Dataset:
    return Dataset(name="t", x=x, y=np.asarray(y), groups=groups, sample_ids=np.arange(len(y)),
                   class_names=list(class_names), fingerprint="f", options={}, predefined_split=predefined)


def test_a_memorising_run_is_overfitting_with_the_minimum_epoch_and_the_regularisers(lab_home):
    # Training loss falls to ~0 while the validation loss bottoms out at epoch 3 and climbs.
    config = RunConfig()
    config.training.early_stopping = False
    config.model.dropout_rate = 0.0
    config.model.l2 = 1e-4
    history = epoch_rows(
        loss=[0.9, 0.5, 0.3, 0.15, 0.07, 0.03, 0.01, 0.005],
        val_loss=[0.95, 0.7, 0.6, 0.65, 0.75, 0.9, 1.1, 1.3],
        accuracy=[0.6, 0.8, 0.9, 0.95, 0.98, 1.0, 1.0, 1.0],
        val_accuracy=[0.55, 0.65, 0.7, 0.69, 0.68, 0.66, 0.66, 0.66],
    )
    finding = doctor.history.overfitting(history, config)
    assert finding.severity == Severity.PROBLEM and finding.epoch == 3
    evidence = finding.evidence
    assert evidence["best_epoch"] == 3 and evidence["last_epoch"] == 8 and evidence["epochs_past_minimum"] == 5
    assert evidence["gap_at_last"] > evidence["gap_at_best"]
    assert evidence["val_loss_rise"] == pytest.approx(1.3 / 0.6 - 1)
    assert "L2 (0.0001)" in evidence["regularisers_used"]
    assert set(evidence["regularisers_unused"]) == {"dropout", "augmentation", "early stopping"}
    assert "epoch 3" in finding.title and "add dropout" in finding.suggestion


def test_an_absurd_learning_rate_is_divergence_with_the_rate_and_the_nan_epoch():
    config = RunConfig()
    config.training.learning_rate = 0.9
    finding, = doctor.history.learning_rate(epoch_rows([0.7, 6.0, 80.0], [0.7, 9.0, 120.0]), config)
    assert finding.id == "divergence" and finding.severity == Severity.PROBLEM
    assert finding.evidence["learning_rate"] == 0.9 and finding.evidence["peak_loss"] == 80.0 and finding.epoch == 3
    nan, = doctor.history.learning_rate(epoch_rows([0.7, float("nan")], [0.7, float("nan")]), config)
    assert nan.id == "divergence" and nan.evidence["nan_epoch"] == 2 and "NaN" in nan.title
    from_error, = doctor.history.learning_rate([], config, error="The loss became NaN in epoch 1 (learning rate 0.9)")
    assert from_error.id == "divergence"


def test_a_flat_start_and_an_oscillating_validation_loss_are_learning_rate_warnings():
    config = RunConfig()
    flat = doctor.history.learning_rate(epoch_rows([0.6931, 0.6930, 0.6931, 0.6929], [0.69] * 4), config)
    assert _ids(flat) == {"flat_loss"}
    wobble = doctor.history.learning_rate(
        epoch_rows([1.0, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4], [1.0, 0.6, 1.1, 0.5, 1.2, 0.55, 1.0]), config)
    assert _ids(wobble) == {"oscillation"} and wobble[0].evidence["direction_changes"] == 5


def test_a_model_that_predicts_one_class_is_a_collapse_and_its_accuracy_is_the_majority_share():
    labels = np.array([0] * 30 + [1] * 20)
    only_zero = np.tile([[0.8, 0.2]], (50, 1))
    val = {1: (labels, only_zero), 2: (labels, only_zero)}
    finding = predictions.collapse(val, ["healthy", "lesion"])
    assert finding.severity == Severity.PROBLEM and finding.evidence["collapsed_epochs"] == [1, 2]
    last = finding.evidence["per_epoch"][-1]
    assert last["top_class"] == "healthy" and last["top_share"] == 1.0 and last["label_share"] == 0.6
    assert last["accuracy"] == pytest.approx(0.6) and "equals the share" in finding.title
    # Without a positive class nothing is said of sensitivity; with lesion positive, it is 0 (never predicted).
    assert "sensitivity" not in last and "sensitivity" not in finding.title
    with_positive = predictions.collapse(val, ["healthy", "lesion"], "lesion")
    assert with_positive.evidence["per_epoch"][-1]["sensitivity"] == 0.0
    assert with_positive.title.endswith("the sensitivity for 'lesion' (the positive class) is 0.00")
    assert "sensitivity for" not in predictions.collapse(val, ["healthy", "lesion"], "healthy").title
    # The chance finding reads the same 60 % against its majority baseline.
    chance = predictions.chance(val, 2, [60, 40], 2)
    assert chance.severity == Severity.WARNING and chance.evidence["majority_baseline"] == 0.6
    # Collapse only early on (the phantom with BatchNorm momentum 0.99) is a note.
    good = np.eye(2)[labels] * 0.8 + 0.1
    assert predictions.collapse({1: (labels, only_zero), 2: (labels, good)}, ["a", "b"]).severity == Severity.NOTE


def test_a_predefined_validation_split_with_one_class_is_a_problem():
    y = np.array([0, 1] * 10 + [0] * 6 + [0, 1] * 2)
    predefined = np.array([0] * 20 + [1] * 6 + [2] * 4)  # train, val (class a only), test
    rng = np.random.default_rng(0)
    dataset = _dataset(rng.normal(size=(30, 4, 4, 4, 1)).astype(np.float32), y, predefined=predefined)
    splits = Splits(np.arange(20), np.arange(20, 26), np.arange(26, 30))
    found = doctor.run_data_findings(dataset, splits, class_weight="none")
    single = next(f for f in found if f.id == "single_class_split")
    assert single.severity == Severity.PROBLEM and single.evidence == {
        "split": "val", "counts": {"a": 6, "b": 0}, "predefined": True}
    assert "predefined validation split holds one class only" in single.title
    assert "duplicates_across_splits" not in _ids(found)


def test_duplicated_volumes_across_splits_are_leakage_with_the_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 8, 8, 8, 1)).astype(np.float32)
    x[20] = x[2]  # an exact copy in the test split of a training volume
    x[21] = x[3] + rng.normal(0, 1e-3, size=x[3].shape)  # a near copy
    splits = {"train": np.arange(16), "val": np.arange(16, 20), "test": np.arange(20, 24)}
    groups = np.arange(24)
    groups[17] = 5  # a training group also in validation
    found = data.leakage_findings(x, splits, groups)
    by_id = {f.id: f for f in found}
    assert by_id["duplicates_across_splits"].evidence["pairs"] == {"train-test": 1}
    assert by_id["duplicates_across_splits"].evidence["examples"] == [(2, 20)]
    assert by_id["near_duplicates"].evidence["pairs"] == {"train-test": 1}
    assert by_id["near_duplicates"].evidence["examples"] == [(3, 21)]
    assert by_id["groups_across_splits"].evidence["shared_groups"] == {"train-val": ["5"]}


def test_split_shift_imbalance_and_tiny_splits_are_warnings():
    names = ["a", "b"]
    found = data.split_findings({"train": np.array([0] * 40 + [1] * 8), "val": np.array([0] * 3 + [1] * 3)},
                                names, class_weight="none")
    assert _ids(found) == {"split_shift", "imbalance", "few_samples"}
    balanced = data.split_findings({"train": np.array([0] * 40 + [1] * 8)}, names, class_weight="balanced")
    assert balanced == []


def test_constant_volumes_and_a_brightness_shortcut_are_reported_before_training():
    rng = np.random.default_rng(2)
    y = np.array([0, 1] * 20)
    x = rng.normal(size=(40, 8, 8, 8, 1)).astype(np.float32) + 3.0 * y[:, None, None, None, None]
    x[0] = 0.0
    found = data.volume_findings(x, y, ["dim", "bright"])
    assert _ids(found) == {"constant_volumes", "shortcut"}
    assert next(f for f in found if f.id == "constant_volumes").evidence == {"count": 1, "empty": 1, "examples": [0]}
    assert "mean intensity" in next(f for f in found if f.id == "shortcut").evidence["shortcut_accuracy"]


def test_a_healthy_run_gets_no_problem_or_warning(lab_home):
    store = open_store()
    run_id = predictions_run(store, num_classes=3, val_size=90, test_size=60, epochs=6)
    for epoch in range(1, 7):
        rows = {"loss": 1.1 / epoch, "val_loss": 1.2 / epoch ** 0.5, "accuracy": 1 - 0.6 / epoch,
                "val_accuracy": 1 - 0.6 / epoch ** 0.5}
        store.log_metrics(run_id, [{"kind": "epoch", "epoch": epoch, "name": n, "value": v} for n, v in rows.items()])
    store.log_metrics(run_id, [{"kind": CHECK_KIND, "epoch": 0, "name": PARAMS_CHECK, "value": 40_000}])
    store.update_run(run_id, best_epoch=6)
    findings = doctor.diagnose(store, run_id)
    assert _ids(findings, Severity.PROBLEM, Severity.WARNING) == set(), [f.title for f in findings]
    assert {"chance", "capacity"} <= _ids(findings, Severity.NOTE)
    chance = next(f for f in findings if f.id == "chance")
    assert chance.evidence["interval_low"] < chance.evidence["accuracy"] <= chance.evidence["interval_high"]
    assert chance.evidence["samples"] == 90


def test_the_wilson_interval_matches_the_textbook_value():
    low, high = predictions.wilson_interval(66, 100)
    assert (round(low, 3), round(high, 3)) == (0.563, 0.745)


def test_a_run_still_training_is_diagnosed_on_the_epochs_it_has(lab_home):
    store = open_store()
    run_id = predictions_run(store, num_classes=2, epochs=2, status=RunStatus.RUNNING)
    assert {f.id for f in doctor.diagnose(store, run_id)} <= {"chance", "capacity", "few_samples"}


def test_inputs_far_from_unit_scale_rank_above_divergence_with_the_range_and_the_first_loss():
    # Raw Hounsfield units: the first loss is 239 and the loss diverges (the CT run).
    facts = doctor.RunFacts(run=_record(), history=epoch_rows([239.0, 410.0, 520.0], [300.0, 450.0, 600.0]),
                            val_predictions={}, input_range=(-1024.0, 1890.0))
    findings = doctor.diagnose_facts(facts)
    ids = [f.id for f in findings]
    assert ids[0] == "input_scale" and "divergence" in ids
    scale = findings[0]
    assert scale.severity == Severity.PROBLEM
    assert scale.evidence["input_min"] == -1024.0 and scale.evidence["input_max"] == 1890.0
    assert scale.evidence["first_loss"] == 239.0 and "from -1024 to 1890" in scale.title and "239" in scale.title
    # The same inputs with a first loss near chance and no divergence: a warning; unit-scale inputs: nothing.
    calm = doctor.RunFacts(run=_record(), history=epoch_rows([0.7, 0.6, 0.5], [0.7, 0.6, 0.55]), val_predictions={},
                           input_range=(0.0, 255.0))
    assert [(f.id, f.severity) for f in doctor.diagnose_facts(calm) if f.id == "input_scale"] == [
        ("input_scale", Severity.WARNING)]
    windowed = doctor.RunFacts(run=_record(), history=epoch_rows([0.7, 0.6, 0.5], [0.7, 0.6, 0.55]),
                               val_predictions={}, input_range=(0.0, 1.0))
    assert "input_scale" not in _ids(doctor.diagnose_facts(windowed))


def test_the_input_range_is_measured_after_the_runs_normalisation():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1000, 1000, (20, 4, 4, 4, 1)).astype(np.float32)
    low, high = data.input_range(x, np.arange(20), "none")
    assert low < -900 and high > 900
    low, high = data.input_range(x, np.arange(20), "minmax")
    assert low == 0.0 and high == 1.0
