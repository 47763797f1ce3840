"""Classification metrics over one set of predictions (pure NumPy / scikit-learn).

Every function takes plain arrays: integer ``labels`` (N,), class
``probabilities`` (N, C) as stored by the run store, and for the binary case the
index of the positive class (engine/positive_class.py) and an optional decision
``threshold`` on P(positive class). The store-level entry points in
``engine.evaluation.report`` build on these, so the CLI and the Inspect page
show the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from engine.datasets.splits import class_counts

Labels = np.ndarray  # (N,) integer class indices
Probabilities = np.ndarray  # (N, C) class probabilities, rows summing to 1

# Probabilities are clipped to [EPSILON, 1] before taking logs (Keras' epsilon).
EPSILON = 1e-7
# Why a metric has no value (JSON: the value is null and this is its reason), and how it is shown.
NO_SAMPLES = "no samples"
UNDEFINED_NO_SAMPLES = "undefined (no samples)"


def shown(value: float | None, digits: int = 4, reason: str | None = None) -> str:
    """A metric as text: its value, or "undefined (no samples)" (``reason`` given) / "-" when it has none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return UNDEFINED_NO_SAMPLES if reason == NO_SAMPLES else (f"undefined ({reason})" if reason else "-")
    return f"{value:.{digits}f}"


def predicted_labels(probabilities: Probabilities, threshold: float | None = None,
                     positive_index: int | None = None) -> Labels:
    """The predicted class of each sample: argmax, or for two classes with a ``threshold`` the positive
    class when P(positive class) >= threshold and the other class otherwise."""
    probabilities = np.asarray(probabilities)
    if threshold is not None and probabilities.shape[1] == 2:
        if positive_index not in (0, 1):
            raise ValueError("a two-class threshold needs the positive class (positive_index 0 or 1)")
        return np.where(probabilities[:, positive_index] >= threshold, positive_index, 1 - positive_index).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def confusion_counts(labels: Labels, predicted: Labels, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class (every class present)."""
    return skm.confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the recall of that class on the diagonal); empty rows stay 0."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def specificity(counts: np.ndarray) -> np.ndarray:
    """Per class, one-vs-rest: true negatives / (true negatives + false positives)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    true_positive = np.diag(counts)
    false_positive = counts.sum(axis=0) - true_positive
    false_negative = counts.sum(axis=1) - true_positive
    true_negative = total - true_positive - false_positive - false_negative
    negatives = true_negative + false_positive
    return np.divide(true_negative, negatives, out=np.full_like(true_negative, np.nan), where=negatives > 0)


def per_class_rows(labels: Labels, predicted: Labels, class_names: Sequence[str]) -> list[dict]:
    """One dict per class: class, precision, recall (sensitivity), specificity, f1, support.

    A class with no sample in ``labels`` has no recall (nor F1): both are None, and "undefined" names why
    (``NO_SAMPLES``), instead of scikit-learn's 0 that reads as "missed every one"."""
    num_classes = len(class_names)
    classes = np.arange(num_classes)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    spec = specificity(confusion_counts(labels, predicted, num_classes))
    return [
        {
            "class": str(class_names[index]),
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "specificity": None if np.isnan(spec[index]) else float(spec[index]),
            "f1": float(f1[index]),
            "support": int(support[index]),
        } | _undefined(int(support[index]), int(len(labels) - support[index]))
        for index in classes
    ]


def _undefined(support: int, negatives: int) -> dict:
    """The cells a class without samples (recall, F1) or without other samples (specificity) leaves undefined."""
    undefined = {}
    if support == 0:
        undefined.update(recall=NO_SAMPLES, f1=NO_SAMPLES)
    if negatives == 0:
        undefined.update(specificity=NO_SAMPLES)
    return ({name: None for name in undefined} | {"undefined": undefined}) if undefined else {}


def balanced_accuracy(labels: Labels, predicted: Labels) -> float | None:
    """The mean recall over the classes present in ``labels``; None (undefined) when fewer than two classes
    are present: a split of one class would otherwise score its one recall, 1.0 for a model that always
    answers it."""
    if len(np.unique(np.asarray(labels))) < 2:
        return None
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected for a small split.
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.balanced_accuracy_score(labels, predicted))


def per_sample_loss(labels: Labels, probabilities: Probabilities) -> np.ndarray:
    """Cross-entropy of each sample: -log P(true class) (equals binary cross-entropy for two classes)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    chosen = probabilities[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return -np.log(np.clip(chosen, EPSILON, 1.0))


@dataclass
class Curve:
    """One ROC or precision-recall curve (one-vs-rest for ``class_name``)."""

    class_name: str
    x: np.ndarray  # false-positive rate (ROC) or recall (PR)
    y: np.ndarray  # true-positive rate (ROC) or precision (PR)
    thresholds: np.ndarray
    auc: float  # ROC AUC, or average precision for PR

    def to_dict(self, with_points: bool = False) -> dict:
        result = {"class": self.class_name, "auc": self.auc}
        if with_points:
            result.update(x=self.x.tolist(), y=self.y.tolist(), thresholds=self.thresholds.tolist())
        return result


def _curve_classes(labels: Labels, num_classes: int, positive_index: int | None) -> list[int]:
    """The positive class of the binary curve, or every class one-vs-rest that has positives and negatives."""
    if num_classes == 2 and positive_index not in (0, 1):
        raise ValueError("two-class curves need the positive class (positive_index 0 or 1)")
    candidates = [positive_index] if num_classes == 2 else list(range(num_classes))
    return [c for c in candidates if 0 < np.sum(labels == c) < len(labels)]


def roc_curves(labels: Labels, probabilities: Probabilities, class_names: Sequence[str],
               positive_index: int | None = None) -> list[Curve]:
    """ROC curves: P(positive class) for two classes, one-vs-rest per class for more.

    Classes with no positive or no negative sample in ``labels`` have no curve.
    """
    labels = np.asarray(labels)
    curves = []
    for c in _curve_classes(labels, len(class_names), positive_index):
        fpr, tpr, thresholds = skm.roc_curve(labels == c, probabilities[:, c])
        curves.append(Curve(str(class_names[c]), fpr, tpr, thresholds, float(skm.auc(fpr, tpr))))
    return curves


def pr_curves(labels: Labels, probabilities: Probabilities, class_names: Sequence[str],
              positive_index: int | None = None) -> list[Curve]:
    """Precision-recall curves (same classes as ``roc_curves``); ``auc`` is the average precision."""
    labels = np.asarray(labels)
    curves = []
    for c in _curve_classes(labels, len(class_names), positive_index):
        precision, recall, thresholds = skm.precision_recall_curve(labels == c, probabilities[:, c])
        average_precision = skm.average_precision_score(labels == c, probabilities[:, c])
        curves.append(Curve(str(class_names[c]), recall, precision, thresholds, float(average_precision)))
    return curves


def macro_auc(curves: Sequence[Curve]) -> float | None:
    """The mean AUC over the curves (the one AUC for a binary run); None without curves."""
    return float(np.mean([curve.auc for curve in curves])) if curves else None


@dataclass
class YoudenPoint:
    threshold: float
    j: float
    sensitivity: float
    specificity: float


def youden_threshold(labels: Labels, positive_probability: np.ndarray, positive_index: int) -> YoudenPoint | None:
    """The threshold on P(positive class) maximising Youden's J = sensitivity + specificity - 1.

    ``positive_probability`` is P(positive class), ``positive_index`` the positive class's index in
    ``labels``. None when the labels hold one class only (J is undefined).
    """
    labels = np.asarray(labels)
    positive = labels == positive_index
    if not 0 < np.sum(positive) < len(labels):
        return None
    fpr, tpr, thresholds = skm.roc_curve(positive, positive_probability)
    j = tpr - fpr
    best = int(np.argmax(j))
    # roc_curve's first threshold is +inf ("predict nothing positive").
    threshold = float(min(thresholds[best], 1.0))
    return YoudenPoint(threshold, float(j[best]), float(tpr[best]), float(1.0 - fpr[best]))


def class_distribution(predicted: Labels, num_classes: int) -> np.ndarray:
    """How many samples were predicted as each class, (C,)."""
    return np.asarray(class_counts(predicted, num_classes), dtype=np.int64)
