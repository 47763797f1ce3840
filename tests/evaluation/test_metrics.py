"""engine.evaluation over predictions written straight into a store (no training)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from engine import evaluation
from engine.errors import RunNotFound
from engine.evaluation import metrics
from engine.store import open_store
from tests.fake_runs import predictions_run


@pytest.fixture
def store(lab_home):
    return open_store()


def test_confusion_matrix_of_every_epoch_matches_sklearn(store):
    run_id = predictions_run(store, num_classes=3, val_size=57, epochs=6)
    epochs = store.prediction_epochs(run_id, "val")
    assert epochs == [1, 2, 3, 4, 5, 6]
    for epoch in epochs:
        stored = store.get_predictions(run_id, "val", epoch)
        result = evaluation.evaluate_run(store, run_id, "val", epoch)
        expected = skm.confusion_matrix(stored["labels"], stored["probabilities"].argmax(axis=1), labels=[0, 1, 2])
        np.testing.assert_array_equal(result.counts, expected)
        assert result.counts.sum() == 57 == store.get_run(run_id).split_sizes["val"]
        np.testing.assert_allclose(result.normalized.sum(axis=1), 1.0)
        assert result.epoch == epoch
    test = evaluation.evaluate_run(store, run_id, "test", best=True)
    assert test.counts.sum() == 40 and test.epoch == 6


def test_per_class_metrics_match_sklearn(store):
    run_id = predictions_run(store, num_classes=3, val_size=80, epochs=2)
    result = evaluation.evaluate_run(store, run_id, "val", 1)
    labels, predicted = result.labels, result.predicted
    recall = skm.recall_score(labels, predicted, average=None, labels=[0, 1, 2], zero_division=0)
    precision = skm.precision_score(labels, predicted, average=None, labels=[0, 1, 2], zero_division=0)
    for index, row in enumerate(result.per_class):
        assert row["recall"] == pytest.approx(recall[index])
        assert row["precision"] == pytest.approx(precision[index])
        negatives = labels != index
        assert row["specificity"] == pytest.approx(np.mean(predicted[negatives] != index))
        assert row["support"] == int(np.sum(labels == index))
    assert result.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(labels, predicted))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(labels, result.probabilities, multi_class="ovr"))
    probabilities = result.probabilities / result.probabilities.sum(axis=1, keepdims=True)  # float32 rounding
    assert np.mean(result.loss) == pytest.approx(skm.log_loss(labels, probabilities, labels=[0, 1, 2]), rel=1e-4)


def test_binary_threshold_and_youden(store):
    run_id = predictions_run(store, num_classes=2, val_size=100, epochs=3)
    at_zero = evaluation.evaluate_run(store, run_id, "val", 2, threshold=0.0)
    assert (at_zero.predicted == 1).all()
    assert at_zero.per_class[1]["recall"] == 1.0 and at_zero.per_class[1]["specificity"] == 0.0
    default = evaluation.evaluate_run(store, run_id, "val", 2)
    at_half = evaluation.evaluate_run(store, run_id, "val", 2, threshold=0.5)
    np.testing.assert_array_equal(default.counts, at_half.counts)
    youden = default.youden
    at_best = evaluation.evaluate_run(store, run_id, "val", 2, threshold=youden.threshold)
    sensitivity, specificity = at_best.per_class[1]["recall"], at_best.per_class[1]["specificity"]
    assert sensitivity + specificity - 1 == pytest.approx(youden.j)
    assert default.roc_auc == pytest.approx(skm.roc_auc_score(default.labels, default.probabilities[:, 1]))
    assert len(default.roc) == 1 and len(default.pr) == 1


def test_one_class_split_has_no_curves():
    labels = np.zeros(10, dtype=int)
    probabilities = np.tile([0.3, 0.7], (10, 1))
    result = evaluation.evaluate_predictions(labels, probabilities, ["a", "b"], positive_class="b")
    assert result.roc == [] and result.youden is None and result.roc_auc is None
    assert result.counts.tolist() == [[0, 10], [0, 0]]
    assert result.per_class[0]["specificity"] is None  # no negatives of class a


def test_distribution_and_history(store):
    run_id = predictions_run(store, num_classes=3, val_size=30, epochs=4)
    epochs = evaluation.stored_epochs(store, run_id, "val")
    numbers, counts = evaluation.class_distribution_by_epoch(epochs, 3)
    assert numbers == [1, 2, 3, 4] and counts.shape == (4, 3) and (counts.sum(axis=1) == 30).all()
    for row, epoch in zip(counts, numbers):
        np.testing.assert_array_equal(row, np.bincount(epochs[epoch]["probabilities"].argmax(1), minlength=3))
    sample_id = int(epochs[1]["sample_ids"][5])
    history_epochs, history = evaluation.prediction_history(epochs, sample_id)
    assert history_epochs == [1, 2, 3, 4] and history.shape == (4, 3)
    np.testing.assert_allclose(history[2], epochs[3]["probabilities"][5])
    assert evaluation.prediction_history(epochs, 10**6)[0] == []


def test_sample_table_and_filters(store):
    run_id = predictions_run(store, num_classes=2, val_size=50, epochs=2)
    result = evaluation.evaluate_run(store, run_id, "val", 1)
    groups = np.arange(1000) // 2
    table = evaluation.sample_table(result, groups)
    assert list(table.columns) == list(evaluation.SAMPLE_COLUMNS) and len(table) == 50
    assert (table["group"] == table["sample_id"] // 2).all()
    np.testing.assert_allclose(table["confidence"], result.probabilities.max(axis=1))
    wrong = evaluation.filter_samples(table, misclassified_only=True)
    assert len(wrong) == int((result.predicted != result.labels).sum()) and not wrong["correct"].any()
    right_only = evaluation.filter_samples(table, classes=["right"], confidence_range=(0.6, 1.0))
    assert (right_only["true"] == "right").all() and (right_only["confidence"] >= 0.6).all()


def test_user_mistakes_are_lab_errors(store):
    run_id = predictions_run(store, num_classes=3, epochs=3, test_size=0)
    with pytest.raises(evaluation.EvaluationError, match="epoch 9.*1-3"):
        evaluation.evaluate_run(store, run_id, "val", 9)
    with pytest.raises(evaluation.EvaluationError, match="two-class"):
        evaluation.evaluate_run(store, run_id, "val", threshold=0.3)
    with pytest.raises(evaluation.EvaluationError, match="no test predictions"):
        evaluation.evaluate_run(store, run_id, "test")
    with pytest.raises(evaluation.EvaluationError, match="split"):
        evaluation.evaluate_run(store, run_id, "train")
    with pytest.raises(RunNotFound):
        evaluation.evaluate_run(store, 999)
    binary = predictions_run(store, num_classes=2, epochs=1)
    with pytest.raises(evaluation.EvaluationError, match="between 0 and 1"):
        evaluation.evaluate_run(store, binary, "val", threshold=1.5)


def test_per_sample_loss_is_cross_entropy():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    loss = metrics.per_sample_loss(np.array([0, 0, 1]), probabilities)
    np.testing.assert_allclose(loss, -np.log([0.9, 0.2, 0.5]))
