"""Findings from stored predictions and the worker's checks: collapse, BatchNorm gap, capacity and chance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.doctor import findings as names
from engine.doctor.findings import Finding, Severity

# (labels, probabilities (N, C)) of one epoch's validation predictions.
Predictions = tuple[np.ndarray, np.ndarray]

# Collapse: one class takes at least this share of the predictions ...
COLLAPSE_SHARE = 0.95
# ... while it holds at most this share of the labels.
COLLAPSE_LABEL_SHARE = 0.80
# BatchNorm: validation accuracy with batch statistics minus with the moving statistics.
BN_GAP_WARNING = 0.05
BN_GAP_PROBLEM = 0.15
# Parameters per training sample above which capacity is called out.
PARAMS_PER_SAMPLE_WARNING = 100_000
CONFIDENCE = 0.95


def predicted_shares(labels: np.ndarray, probabilities: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(share of predictions per class, share of labels per class)."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    n = max(1, len(labels))
    return (np.bincount(predicted, minlength=num_classes)[:num_classes] / n,
            np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes] / n)


def collapse(val: Mapping[int, Predictions], class_names: Sequence[str],
             positive_class: str | None = None) -> Finding | None:
    """Epochs in which (nearly) every validation sample is predicted as one class.

    For a two-class run, ``positive_class`` (``RunRecord.positive_class``) adds its sensitivity to each epoch's
    evidence, and to the title when the model collapsed onto the other class: it then finds no positive at all.
    """
    num_classes = len(class_names)
    if not val or num_classes < 2:
        return None
    per_epoch = []
    for epoch in sorted(val):
        labels, probabilities = val[epoch]
        if len(labels) < 5:
            continue
        predicted, truth = predicted_shares(labels, probabilities, num_classes)
        top = int(np.argmax(predicted))
        accuracy = float(np.mean(np.asarray(probabilities).argmax(axis=1) == labels))
        row = {
            "epoch": epoch, "top_class": class_names[top], "top_share": float(predicted[top]),
            "label_share": float(truth[top]), "majority_share": float(truth.max()), "accuracy": accuracy,
            "collapsed": bool(predicted[top] >= COLLAPSE_SHARE and truth[top] <= COLLAPSE_LABEL_SHARE),
        }
        if positive_class is not None and num_classes == 2 and str(positive_class) in map(str, class_names):
            index = [str(name) for name in class_names].index(str(positive_class))
            positives = np.asarray(labels) == index
            hits = np.asarray(probabilities).argmax(axis=1)[positives] == index
            row.update(positive_class=str(positive_class),
                       sensitivity=float(np.mean(hits)) if positives.any() else None)
        per_epoch.append(row)
    collapsed = [row for row in per_epoch if row["collapsed"]]
    if not collapsed:
        return None
    last = per_epoch[-1]
    worst = last if last["collapsed"] else collapsed[0]
    majority_note = ""
    if abs(worst["accuracy"] - worst["majority_share"]) < 1e-9 or abs(worst["accuracy"] - worst["label_share"]) < 1e-9:
        majority_note = (f"; its accuracy {worst['accuracy']:.2%} equals the share of that class in the labels, "
                         "which is what always answering one class scores")
    epochs_text = ", ".join(str(row["epoch"]) for row in collapsed)
    if last["collapsed"]:
        missed = ""
        if last.get("sensitivity") is not None and last["top_class"] != last["positive_class"]:
            missed = (f"; the sensitivity for '{last['positive_class']}' (the positive class) is "
                      f"{last['sensitivity']:.2f}")
        severity, title = Severity.PROBLEM, (
            f"Collapse onto one class: at epoch {last['epoch']} the model predicts '{last['top_class']}' for "
            f"{last['top_share']:.0%} of the validation samples, which hold {last['label_share']:.0%} of that class"
            + majority_note + missed)
    else:
        severity, title = Severity.NOTE, (
            f"The model predicted one class only in epoch(s) {epochs_text} and recovered afterwards" + majority_note)
    return Finding(
        id="collapse", severity=severity, title=title, epoch=worst["epoch"],
        suggestion="Check the BatchNorm finding (moving statistics that lag behind), the class balance (use "
        "balanced class weights) and the learning rate (too high a rate can kill every unit but the bias); "
        "look at the validation split's labels: a split with one class makes one-class answers look perfect.",
        evidence={"collapsed_epochs": [row["epoch"] for row in collapsed], "per_epoch": per_epoch},
    )


def batchnorm_gap(checks: Mapping[str, tuple[int, float]], *, batch_size: int, momentum: float,
                  train_samples: int | None) -> Finding | None:
    """The validation accuracy with BatchNorm in inference mode against training mode (batch statistics)."""
    if names.BN_ACCURACY_INFERENCE not in checks or names.BN_ACCURACY_BATCH not in checks:
        return None
    epoch, inference = checks[names.BN_ACCURACY_INFERENCE]
    _, batch_stats = checks[names.BN_ACCURACY_BATCH]
    gap = batch_stats - inference
    if gap < BN_GAP_WARNING:
        return None
    steps = checks.get(names.STEPS_PER_EPOCH_CHECK, (0, None))[1]
    if steps is None and train_samples:
        steps = int(np.ceil(train_samples / max(1, batch_size)))
    causes = []
    if steps is not None:
        causes.append(f"{steps:.0f} steps per epoch with momentum {momentum:g}: the moving statistics keep "
                      f"{momentum ** steps:.0%} of their old value after an epoch")
    if batch_size < 16:
        causes.append(f"small batches ({batch_size}) give noisy batch statistics")
    causes.append("a shift in intensity between the training and validation volumes")
    return Finding(
        id="batchnorm_gap",
        severity=Severity.PROBLEM if gap >= BN_GAP_PROBLEM else Severity.WARNING,
        title=f"BatchNorm train/inference gap: validation accuracy {inference:.2f} with the moving statistics "
        f"(inference mode) but {batch_stats:.2f} with batch statistics (training mode) after epoch {epoch}",
        suggestion="Lower the BatchNorm momentum (0.9, or 0.8 for few steps per epoch), train more steps "
        "(more epochs or a smaller batch only if batches stay >= 16), normalise the inputs (z-score), or "
        "turn BatchNorm off for very small datasets.",
        epoch=epoch,
        evidence={"accuracy_inference": inference, "accuracy_batch_stats": batch_stats, "gap": gap,
                  "loss_inference": checks.get(names.BN_LOSS_INFERENCE, (0, None))[1],
                  "loss_batch_stats": checks.get(names.BN_LOSS_BATCH, (0, None))[1],
                  "momentum": momentum, "batch_size": batch_size, "steps_per_epoch": steps, "likely_causes": causes},
    )


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (scipy.stats.binomtest)."""
    from scipy import stats

    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def chance(val: Mapping[int, Predictions], epoch: int | None, train_counts: Sequence[int] | None,
           num_classes: int) -> Finding | None:
    """The validation accuracy at ``epoch`` with its 95 % interval against the majority and stratified baselines."""
    if not val:
        return None
    epoch = epoch if epoch in val else max(val)
    labels, probabilities = val[epoch]
    n = len(labels)
    if n == 0:
        return None
    correct = int(np.sum(np.asarray(probabilities).argmax(axis=1) == labels))
    low, high = wilson_interval(correct, n)
    val_share = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes] / n
    reference = val_share
    if train_counts is not None and sum(train_counts):
        reference = np.asarray(train_counts, dtype=float) / sum(train_counts)
    majority_class = int(np.argmax(reference))
    majority = float(val_share[majority_class])  # always answering the training majority class
    stratified = float(np.dot(reference, val_share))  # guessing with the training class shares
    accuracy = correct / n
    evidence = {"epoch": epoch, "accuracy": accuracy, "correct": correct, "samples": n,
                "interval_low": low, "interval_high": high, "confidence": CONFIDENCE,
                "majority_baseline": majority, "stratified_baseline": stratified}
    baselines = f"majority-class baseline {majority:.1%}, stratified-random {stratified:.1%}"
    if low <= majority:
        return Finding(
            id="chance", severity=Severity.WARNING, epoch=epoch, evidence=evidence,
            title=f"Validation accuracy {accuracy:.1%} (95% interval {low:.1%}-{high:.1%}, {n} samples) is not "
            f"clearly above chance: {baselines}",
            suggestion="Until the interval clears the majority baseline the model has not shown it learned "
            "anything; a larger validation split narrows the interval.",
        )
    return Finding(
        id="chance", severity=Severity.NOTE, epoch=epoch, evidence=evidence,
        title=f"Validation accuracy {accuracy:.1%} at epoch {epoch} (95% interval {low:.1%}-{high:.1%} "
        f"from {n} samples) against {baselines}",
        suggestion="Differences between runs smaller than the interval's width are not evidence.",
    )


def capacity(checks: Mapping[str, tuple[int, float]], train_samples: int | None) -> Finding | None:
    if names.PARAMS_CHECK not in checks or not train_samples:
        return None
    params = int(checks[names.PARAMS_CHECK][1])
    per_sample = params / train_samples
    evidence = {"params": params, "train_samples": train_samples, "params_per_sample": per_sample}
    if per_sample >= PARAMS_PER_SAMPLE_WARNING:
        return Finding(
            id="capacity", severity=Severity.WARNING, evidence=evidence,
            title=f"{params:,} parameters for {train_samples} training samples ({per_sample:,.0f} per sample): "
            "the model can memorise the training set",
            suggestion="Lower the width multiplier, choose a smaller architecture, or add data and augmentation.",
        )
    return Finding(
        id="capacity", severity=Severity.NOTE, evidence=evidence,
        title=f"{params:,} parameters for {train_samples} training samples ({per_sample:,.0f} per sample)",
        suggestion="A useful reference when comparing architectures and widths.",
    )
