"""The positive class: guessed from the names, resolved from the run record, used by every two-class number."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from engine import compare, evaluation, positive_class, validation
from engine.config import RunConfig
from engine.errors import ConfigError
from engine.evaluation.cli import format_text
from engine.store import open_store
from tests.fake_runs import predictions_run


@pytest.fixture
def store(lab_home):
    return open_store()


@pytest.mark.parametrize(("names", "expected"), [
    (("lesion", "normal"), "lesion"),
    (("healthy", "lesion"), "lesion"),
    (("0", "1"), "1"),
    (("-1", "1"), "1"),
    (("benign", "malignant"), "malignant"),
    (("MGMT+", "MGMT-"), "MGMT+"),
    (("MGMT-", "MGMT+"), "MGMT+"),
    (("abnormal", "normal"), "abnormal"),
    (("Negative", "Positive"), "Positive"),
    (("control", "patient"), "patient"),
    (("no_tumor", "tumor"), "tumor"),
    (("tumour", "no tumour"), "tumour"),
    (("disease", "healthy"), "disease"),
    (("CN", "AD"), "AD"),
    (("nonlesion", "lesion"), "lesion"),
    (("HGG", "LGG"), "HGG"),
])
def test_the_guess_reads_the_names(names, expected):
    assert positive_class.guess(names) == expected
    assert positive_class.guess(tuple(reversed(names))) == expected  # whatever the order


@pytest.mark.parametrize("names", [("ball", "cube"), ("left", "right"), ("2", "2.0")])
def test_names_that_say_nothing_give_the_second_class(names):
    # As before positive classes were chosen (the classes come sorted).
    assert positive_class.guess(names) == names[1]


def test_no_positive_class_without_exactly_two_classes():
    assert positive_class.guess(["a", "b", "c"]) is None
    assert positive_class.resolve(["a", "b", "c"], "a") is None
    assert "two-class datasets only" in positive_class.problem(["a", "b", "c"], "a")
    assert "choose one of the two classes" in positive_class.problem(["lesion", "normal"], "tumour")
    assert positive_class.problem(["lesion", "normal"], "lesion") is None


def test_a_lesion_normal_run_reports_lesion_sensitivity_and_thresholds_p_lesion(store):
    run_id = predictions_run(store, num_classes=2, val_size=120, epochs=2, class_names=["lesion", "normal"],
                      positive_class="lesion")
    run = store.get_run(run_id)
    assert run.positive_class == "lesion" and run.positive_class_chosen
    result = evaluation.evaluate_run(store, run_id, "val", 2)
    labels, probabilities = result.labels, result.probabilities
    assert result.positive_class == "lesion" and result.positive_index == 0 and result.negative_class == "normal"
    # Sensitivity is the recall of lesion (class index 0), specificity the recall of normal.
    predicted = probabilities.argmax(axis=1)
    assert result.sensitivity == pytest.approx(skm.recall_score(labels == 0, predicted == 0))
    assert result.specificity == pytest.approx(skm.recall_score(labels == 1, predicted == 1))
    assert result.to_dict()["positive_class"] == "lesion"
    # ROC / PR are the lesion curves.
    assert [curve.class_name for curve in result.roc] == ["lesion"] == [curve.class_name for curve in result.pr]
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(labels == 0, probabilities[:, 0]))
    # The threshold is on P(lesion): at 0 every sample is lesion, at 1 (almost) none.
    everything = evaluation.evaluate_run(store, run_id, "val", 2, threshold=0.0)
    assert (everything.predicted == 0).all() and everything.sensitivity == 1.0 and everything.specificity == 0.0
    at = 0.7
    thresholded = evaluation.evaluate_run(store, run_id, "val", 2, threshold=at)
    np.testing.assert_array_equal(thresholded.predicted == 0, probabilities[:, 0] >= at)
    # Youden's threshold is on P(lesion) too: applying it gives its J.
    youden = result.youden
    at_best = evaluation.evaluate_run(store, run_id, "val", 2, threshold=youden.threshold)
    assert at_best.sensitivity + at_best.specificity - 1 == pytest.approx(youden.j)
    assert youden.sensitivity == pytest.approx(at_best.sensitivity)
    # The class distribution per epoch follows the same threshold.
    epochs = evaluation.stored_epochs(store, run_id, "val")
    _, counts = evaluation.class_distribution_by_epoch(epochs, 2, 0.0, positive_index=0)
    assert (counts[:, 0] == 120).all()


def test_an_old_run_without_a_positive_class_keeps_its_numbers_and_says_for_which_class(store):
    run_id = predictions_run(store, num_classes=2, val_size=80, epochs=2, class_names=["lesion", "normal"])
    raw = json.loads(store.get_run(run_id).config.to_json())
    del raw["data"]["positive_class"]  # a config stored before the field existed
    run = store.get_run(run_id)
    old = RunConfig.from_dict(raw)
    assert old.data.positive_class is None
    assert run.positive_class == "normal" and not run.positive_class_chosen
    result = evaluation.evaluate_run(store, run_id, "val", 2)
    stored = store.get_predictions(run_id, "val", 2)
    # The numbers it always had: class index 1 (normal) as positive, argmax predictions.
    predicted = stored["probabilities"].argmax(axis=1)
    assert result.sensitivity == pytest.approx(skm.recall_score(stored["labels"] == 1, predicted == 1))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(stored["labels"] == 1, stored["probabilities"][:, 1]))
    assert result.positive_class == "normal" and not result.positive_class_chosen
    note = evaluation.positive_class_note(run)
    assert note.startswith("positive class: normal (the second class") and note == result.positive_class_note
    assert "positive class: normal (the second class" in format_text(result)


def test_compare_and_the_cli_use_the_run_positive_class(store):
    chosen = predictions_run(store, num_classes=2, val_size=60, test_size=50, epochs=2, class_names=["lesion", "normal"],
                      positive_class="lesion", seed=1)
    comparison = compare.load(store, [chosen])
    test = evaluation.evaluate_run(store, chosen, "test")
    row = compare.run_summary(comparison, comparison.run(chosen), "val_accuracy")
    assert row["positive class"] == "lesion"
    assert row["test sensitivity"] == pytest.approx(test.sensitivity)
    assert row["test specificity"] == pytest.approx(test.specificity)
    assert row["test sensitivity"] == pytest.approx(test.per_class[0]["recall"])
    text = format_text(evaluation.evaluate_run(store, chosen, "val", 2, threshold=0.4))
    assert "threshold 0.4 on P(lesion)" in text and "positive class: lesion\n" in text + "\n"
    assert "sensitivity (lesion)" in text and "ROC AUC (positive class lesion)" in text


def test_validation_refuses_a_positive_class_the_dataset_does_not_have(lab_home):
    config = RunConfig()
    config.data.dataset = "phantom_lesions"
    config.data.positive_class = "tumour"
    with pytest.raises(ConfigError, match="choose one of the two classes, 'healthy' or 'lesion'"):
        validation.validate(config)
    config.data.dataset = "digits3d"
    config.data.positive_class = "3"
    with pytest.raises(ConfigError, match="two-class datasets only"):
        validation.validate(config)
    config.data.positive_class = "bad\nname"
    assert any(problem.field == "data.positive_class" for problem in config.field_problems())
