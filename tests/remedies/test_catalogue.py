"""Each fixable finding gets its remedy in the config; unknown findings and remedies already applied are refused."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.doctor.findings import Finding, Severity
from engine.errors import ConfigError
from engine.remedies import prescribe, remedies_for


def _finding(finding_id: str, **evidence) -> Finding:
    return Finding(id=finding_id, severity=Severity.PROBLEM, title=finding_id, suggestion="", evidence=evidence)


def _config(**training) -> RunConfig:
    config = RunConfig()
    config.model.architecture = "kerasio3d"  # BatchNorm on, dropout 0.3, no L2 by its preset
    for name, value in training.items():
        setattr(config.training, name, value)
    return config


def _changed(prescription) -> dict:
    return {change.field: change.new for change in prescription.changes}


def test_overfitting_gets_more_dropout_l2_augmentation_and_early_stopping():
    fixed = prescribe(_config(), _finding("overfitting"))
    assert fixed.remedy.id == "regularise"
    assert _changed(fixed) == {"model.dropout_rate": 0.5, "model.l2": 1e-4, "training.augment": True,
                               "training.early_stopping": True}
    assert fixed.config.model.dropout_rate == 0.5 and fixed.config.training.augment
    only = prescribe(_config(), _finding("overfitting"), "augment")
    assert set(_changed(only)) == {"training.augment", "training.early_stopping"}


def test_a_batchnorm_gap_lowers_the_momentum_more_with_few_steps_or_turns_batchnorm_off():
    assert _changed(prescribe(_config(), _finding("batchnorm_gap", steps_per_epoch=50))) == {
        "model.batchnorm_momentum": 0.9}
    assert _changed(prescribe(_config(), _finding("batchnorm_gap", steps_per_epoch=4))) == {
        "model.batchnorm_momentum": 0.8}
    assert _changed(prescribe(_config(), _finding("batchnorm_gap"), "no_batchnorm")) == {"model.batchnorm": False}


def test_imbalance_and_collapse_get_class_weights_or_focal_loss():
    for finding_id in ("imbalance", "collapse"):
        assert _changed(prescribe(_config(), _finding(finding_id))) == {"training.class_weight": "balanced"}
        assert _changed(prescribe(_config(), _finding(finding_id), "focal_loss")) == {"training.loss": "focal"}


def test_divergence_takes_the_range_tests_rate_or_a_tenth_when_it_suggests_no_lower():
    asked = []

    def range_test(config: dict) -> dict:
        asked.append(config)
        return {"run_id": 7, "suggestion": {"suggested": 3.2e-4}}

    fixed = prescribe(_config(learning_rate=0.5), _finding("divergence"), range_test=range_test)
    assert _changed(fixed) == {"training.learning_rate": 3.2e-4} and fixed.range_test_run == 7
    assert asked[0]["training"]["learning_rate"] == 0.5  # the test ran on the original config
    higher = prescribe(_config(learning_rate=1e-3), _finding("divergence"),
                       range_test=lambda config: {"run_id": 8, "suggestion": {"suggested": 5e-3}})
    assert _changed(higher) == {"training.learning_rate": 1e-4}
    flat = prescribe(_config(learning_rate=1e-6), _finding("flat_loss"),
                     range_test=lambda config: {"run_id": 9, "suggestion": {"suggested": 5e-3}})
    assert _changed(flat) == {"training.learning_rate": 5e-3}


def test_a_finding_without_a_remedy_and_a_remedy_already_in_place_are_refused_in_a_sentence():
    assert remedies_for("some_future_check") == [] and remedies_for("near_duplicates") == []
    with pytest.raises(ConfigError, match="no automatic remedy"):
        prescribe(_config(), _finding("near_duplicates"))
    with pytest.raises(ConfigError, match="already has"):
        prescribe(_config(class_weight="balanced"), _finding("imbalance"))
    with pytest.raises(ConfigError, match="does not treat"):
        prescribe(_config(), _finding("imbalance"), "bn_momentum")


def test_a_one_class_predefined_split_is_re_split_stratified_and_the_new_split_holds_both_classes():
    import numpy as np

    from engine import datasets, doctor
    from engine.datasets import Dataset

    y = np.array([0, 1] * 20 + [0] * 8 + [0, 1] * 4)
    predefined = np.array([0] * 40 + [1] * 8 + [2] * 8)  # train, a validation split of class a only, test
    dataset = Dataset(name="t", x=np.zeros((56, 4, 4, 4, 1), np.float32), y=y, groups=None,
                      sample_ids=np.arange(56), class_names=["a", "b"], fingerprint="f", options={},
                      predefined_split=predefined)
    kept = datasets.make_splits(dataset, 0.15, 0.15, seed=0)
    found = doctor.run_data_findings(dataset, kept, class_weight="none")
    single = next(finding for finding in found if finding.id == "single_class_split")
    fixed = prescribe(_config(), single)
    assert _changed(fixed) == {"data.predefined_split": False} and fixed.remedy.id == "stratified_resplit"
    resplit = datasets.make_splits(dataset, fixed.config.data.val_fraction, fixed.config.data.test_fraction,
                                   seed=0, use_predefined=fixed.config.data.predefined_split)
    assert set(y[resplit.val]) == {0, 1} and set(y[resplit.test]) == {0, 1}
    assert "single_class_split" not in {f.id for f in doctor.run_data_findings(dataset, resplit, class_weight="none")}
