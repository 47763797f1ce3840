"""Evaluation of a stored run: one split at one epoch, over the predictions in the store.

``evaluate_run`` is the one entry point the CLI and the Inspect page share;
``evaluate_predictions`` does the same for arrays already in hand. The
predicted-class distribution per epoch and a sample's prediction history read
every stored epoch of a split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.datasets.splits import class_counts
from engine.errors import LabError
from engine.evaluation import metrics
from engine.runs import RunRecord

SPLITS = ("val", "test")
SPLIT_TITLES = {"val": "validation", "test": "test"}


class EvaluationError(LabError):
    """A run, split, epoch or threshold that cannot be evaluated as asked."""


@dataclass
class Evaluation:
    """Every number shown for one split at one epoch (binary runs at ``threshold``)."""

    class_names: list[str]
    sample_ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    threshold: float | None
    counts: np.ndarray
    normalized: np.ndarray
    per_class: list[dict]
    accuracy: float
    balanced_accuracy: float | None  # None: the split holds one class only (see ``undefined``)
    roc: list[metrics.Curve]
    pr: list[metrics.Curve]
    youden: metrics.YoudenPoint | None
    loss: np.ndarray  # per sample
    # Two classes: the index of the positive class (engine/positive_class.py); None for more classes.
    positive_index: int | None = None
    # Whether the run recorded its positive class (False: an older run, whose numbers are for the second class).
    positive_class_chosen: bool = True
    run_id: int | None = None
    split: str | None = None
    epoch: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def positive_class(self) -> str | None:
        """The class sensitivity, ROC / PR and the threshold are about (two classes); None for more."""
        return None if self.positive_index is None else self.class_names[self.positive_index]

    @property
    def positive_class_note(self) -> str | None:
        """"positive class: lesion" (see ``positive_class_note``); None for more classes."""
        return _positive_note(self.positive_class, self.positive_class_chosen)

    @property
    def negative_class(self) -> str | None:
        return None if self.positive_index is None else self.class_names[1 - self.positive_index]

    @property
    def sensitivity(self) -> float | None:
        """Two classes: the recall of the positive class; None for more classes."""
        return None if self.positive_index is None else self.per_class[self.positive_index]["recall"]

    @property
    def specificity(self) -> float | None:
        """Two classes: the recall of the other class (None also when the split holds no negatives)."""
        return None if self.positive_index is None else self.per_class[self.positive_index]["specificity"]

    @property
    def missing_classes(self) -> list[str]:
        """The run's classes with no sample in this split."""
        return [name for name, count in zip(self.class_names, self.true_counts) if count == 0]

    @property
    def undefined(self) -> dict[str, str]:
        """{metric: why it has no value}: balanced accuracy and each recall that a class without samples leaves
        undefined (the JSON carries null and this reason; the CLI and the pages show "undefined (no samples)")."""
        reasons = {}
        missing = self.missing_classes
        if self.balanced_accuracy is None and len(self.labels):
            reasons["balanced_accuracy"] = (f"{metrics.NO_SAMPLES} of {', '.join(repr(m) for m in missing)}"
                                            if missing else "fewer than two classes in the split")
        for row in self.per_class:
            for name, reason in row.get("undefined", {}).items():
                reasons[f"{name} ({row['class']})"] = reason
        if self.positive_index is not None and self.sensitivity is None:
            reasons["sensitivity"] = metrics.NO_SAMPLES
        return reasons

    @property
    def mean_loss(self) -> float | None:
        """Mean per-sample cross-entropy; None for an empty split."""
        return float(np.mean(self.loss)) if len(self.loss) else None

    @property
    def true_counts(self) -> list[int]:
        """Samples per true class."""
        return class_counts(self.labels, self.num_classes)

    @property
    def roc_auc(self) -> float | None:
        return metrics.macro_auc(self.roc)

    @property
    def pr_auc(self) -> float | None:
        return metrics.macro_auc(self.pr)

    def to_dict(self, with_curves: bool = False) -> dict[str, Any]:
        """A JSON-ready summary (``evaluate --json``)."""
        return {
            "run_id": self.run_id,
            "split": self.split,
            "epoch": self.epoch,
            "num_samples": int(len(self.labels)),
            "class_names": list(self.class_names),
            "positive_class": self.positive_class,
            "threshold": self.threshold,
            "confusion_matrix": self.counts.tolist(),
            "confusion_matrix_normalized": np.round(self.normalized, 6).tolist(),
            "per_class": self.per_class,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "undefined": self.undefined,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "mean_loss": self.mean_loss,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "roc": [curve.to_dict(with_curves) for curve in self.roc],
            "pr": [curve.to_dict(with_curves) for curve in self.pr],
            "youden": None if self.youden is None else vars(self.youden),
        }


def _check_threshold(threshold: float | None, num_classes: int) -> None:
    if threshold is None:
        return
    if num_classes != 2:
        raise EvaluationError(
            f"A decision threshold applies to two-class runs only; this run has {num_classes} classes, "
            "so leave out --threshold."
        )
    if not 0.0 <= float(threshold) <= 1.0:
        raise EvaluationError(f"The threshold is {threshold}; choose a probability between 0 and 1.")


def evaluate_predictions(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    threshold: float | None = None,
    sample_ids: np.ndarray | None = None,
    *,
    positive_class: str | None = None,
) -> Evaluation:
    """Every metric for one set of predictions; ``threshold`` (binary only) on P(``positive_class``) replaces argmax.

    Two classes need ``positive_class`` (one of ``class_names``): sensitivity, the curves and the
    threshold are about it.
    """
    class_names = [str(name) for name in class_names]
    _check_threshold(threshold, len(class_names))
    binary = len(class_names) == 2
    positive_index = None
    if binary:
        if positive_class is None or str(positive_class) not in class_names:
            raise ValueError(f"two-class metrics need the positive class, one of {class_names}; got {positive_class!r}")
        positive_index = class_names.index(str(positive_class))
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = metrics.predicted_labels(probabilities, threshold, positive_index)
    counts = metrics.confusion_counts(labels, predicted, len(class_names))
    return Evaluation(
        class_names=class_names,
        sample_ids=np.arange(len(labels)) if sample_ids is None else np.asarray(sample_ids),
        labels=labels,
        probabilities=probabilities,
        predicted=predicted,
        threshold=None if threshold is None else float(threshold),
        counts=counts,
        normalized=metrics.row_normalized(counts),
        per_class=metrics.per_class_rows(labels, predicted, class_names),
        accuracy=float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        balanced_accuracy=metrics.balanced_accuracy(labels, predicted) if len(labels) else None,
        roc=metrics.roc_curves(labels, probabilities, class_names, positive_index),
        pr=metrics.pr_curves(labels, probabilities, class_names, positive_index),
        youden=metrics.youden_threshold(labels, probabilities[:, positive_index], positive_index) if binary else None,
        loss=metrics.per_sample_loss(labels, probabilities),
        positive_index=positive_index,
    )


def class_names_of(run: RunRecord) -> list[str]:
    """The run's class names (numbers when the run never recorded them)."""
    names = run.class_names
    if names:
        return [str(name) for name in names]
    if run.num_classes:
        return [str(index) for index in range(int(run.num_classes))]
    raise EvaluationError(f"Run {run.id} has not loaded its data yet, so there is nothing to evaluate.")


def resolve_epoch(store, run: RunRecord, split: str, epoch: int | None = None, best: bool = False) -> int:
    """The stored epoch to evaluate: ``epoch``, the best epoch, or the latest one stored for ``split``."""
    if split not in SPLITS:
        raise EvaluationError(f"The split is {split!r}; choose one of {', '.join(SPLITS)}.")
    epochs = store.prediction_epochs(run.id, split)
    if not epochs:
        if split == "test":
            raise EvaluationError(
                f"Run {run.id} has no test predictions (status {run.status.label}); they are stored when a run "
                "finishes, so evaluate --split val or wait for the run to finish."
            )
        raise EvaluationError(f"Run {run.id} has no validation predictions yet; wait for its first epoch to end.")
    if best:
        if split == "test":
            return epochs[-1]  # test predictions are stored once, with the best weights
        epoch = run.best_epoch
        if epoch is None:
            raise EvaluationError(f"Run {run.id} has no best epoch yet; give --epoch N instead of --best.")
    if epoch is None:
        return epochs[-1]
    if int(epoch) not in epochs:
        raise EvaluationError(
            f"Run {run.id} has no {SPLIT_TITLES[split]} predictions for epoch {epoch}; "
            f"stored epochs are {_epoch_ranges(epochs)}."
        )
    return int(epoch)


def _epoch_ranges(epochs: Sequence[int]) -> str:
    if len(epochs) > 1 and list(epochs) == list(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}-{epochs[-1]}"
    return ", ".join(str(e) for e in epochs)


def evaluate_run(
    store,
    run_id: int,
    split: str = "val",
    epoch: int | None = None,
    *,
    best: bool = False,
    threshold: float | None = None,
) -> Evaluation:
    """Evaluate run ``run_id`` on ``split`` at ``epoch`` (default: the latest stored; ``best``: the best)."""
    run = store.get_run(run_id)
    class_names = class_names_of(run)
    _check_threshold(threshold, len(class_names))
    chosen = resolve_epoch(store, run, split, epoch, best)
    stored = store.get_predictions(run_id, split, chosen)
    evaluation = evaluate_predictions(
        stored["labels"], stored["probabilities"], class_names, threshold, sample_ids=stored["sample_ids"],
        positive_class=run.positive_class,
    )
    evaluation.run_id, evaluation.split, evaluation.epoch = int(run_id), split, int(stored["epoch"])
    evaluation.positive_class_chosen = run.positive_class_chosen or run.positive_class is None
    return evaluation


def _positive_note(name: str | None, chosen: bool) -> str | None:
    if name is None:
        return None
    if chosen:
        return f"positive class: {name}"
    return f"positive class: {name} (the second class: this run was recorded before positive classes were chosen)"


def positive_class_note(run: RunRecord) -> str | None:
    """The words pages and the CLI show for a two-class run: which class is positive, and for an older run
    that it is the second class because the run recorded none; None for more classes."""
    return _positive_note(run.positive_class, run.positive_class_chosen)


def stored_epochs(store, run_id: int, split: str = "val") -> dict[int, dict[str, np.ndarray]]:
    """Every stored epoch's predictions for a split: {epoch: {"sample_ids", "labels", "probabilities"}}."""
    return {epoch: store.get_predictions(run_id, split, epoch) for epoch in store.prediction_epochs(run_id, split)}


def class_distribution_by_epoch(
    epochs: dict[int, dict[str, np.ndarray]], num_classes: int, threshold: float | None = None,
    positive_index: int | None = None,
) -> tuple[list[int], np.ndarray]:
    """(epoch numbers, (E, C) counts of predicted classes): a collapse onto one class shows as one row.

    A two-class ``threshold`` is on P(class ``positive_index``).
    """
    numbers = sorted(epochs)
    counts = np.array(
        [
            metrics.class_distribution(
                metrics.predicted_labels(epochs[e]["probabilities"], threshold, positive_index), num_classes
            )
            for e in numbers
        ],
        dtype=np.int64,
    ).reshape(len(numbers), num_classes)
    return numbers, counts


def prediction_history(
    epochs: dict[int, dict[str, np.ndarray]], sample_id: int
) -> tuple[list[int], np.ndarray]:
    """(epoch numbers, (E, C) probabilities) of one sample across the stored epochs that hold it."""
    numbers, rows = [], []
    for epoch in sorted(epochs):
        positions = np.flatnonzero(epochs[epoch]["sample_ids"] == sample_id)
        if len(positions):
            numbers.append(epoch)
            rows.append(epochs[epoch]["probabilities"][positions[0]])
    width = rows[0].shape[0] if rows else 0
    return numbers, np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


SAMPLE_COLUMNS = ("sample_id", "group", "true", "predicted", "confidence", "loss", "correct")


def sample_table(evaluation: Evaluation, groups: np.ndarray | None = None) -> pd.DataFrame:
    """One row per sample: sample id, group, true and predicted label, confidence, loss, correct.

    ``confidence`` is the probability of the predicted class; ``groups`` is the
    dataset's group array indexed by sample id (None when it has no groups).
    """
    names = np.asarray(evaluation.class_names, dtype=object)
    rows = np.arange(len(evaluation.labels))
    sample_ids = np.asarray(evaluation.sample_ids, dtype=np.int64)
    if groups is not None and len(sample_ids) and sample_ids.max() < len(groups):
        group_column = np.asarray(groups)[sample_ids]
    else:
        group_column = np.full(len(sample_ids), None, dtype=object)
    return pd.DataFrame(
        {
            "sample_id": sample_ids,
            "group": group_column,
            "true": names[evaluation.labels],
            "predicted": names[evaluation.predicted],
            "confidence": evaluation.probabilities[rows, evaluation.predicted],
            "loss": evaluation.loss,
            "correct": evaluation.predicted == evaluation.labels,
        },
        columns=list(SAMPLE_COLUMNS),
    )


def filter_samples(
    table: pd.DataFrame,
    *,
    misclassified_only: bool = False,
    classes: Sequence[str] | None = None,
    confidence_range: tuple[float, float] = (0.0, 1.0),
) -> pd.DataFrame:
    """The rows of ``sample_table`` kept by the Inspect page's filters (``classes`` matches the true label)."""
    keep = table["confidence"].between(confidence_range[0], confidence_range[1])
    if misclassified_only:
        keep &= ~table["correct"]
    if classes:
        keep &= table["true"].isin(list(classes))
    return table[keep]
