"""Findings from the per-epoch curves: overfitting and the learning rate (divergence, flat loss, oscillation)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.doctor.findings import Finding, Severity

EpochHistory = Sequence[dict[str, Any]]

# Overfitting: the validation loss ended this much above its minimum ...
OVERFIT_RISE = 0.10
# ... at least this many epochs after it (and a problem once it rose this much).
OVERFIT_MIN_EPOCHS_PAST = 2
OVERFIT_PROBLEM_RISE = 0.25
# Train accuracy minus validation accuracy that counts as memorising.
MEMORISE_GAP = 0.20
# Divergence: the training loss rose this many times above its first value ...
DIVERGENCE_FACTOR = 1.5
# ... or an epoch's training loss reached this many times the loss of a chance-level prediction, ln(K) for
# K classes (a first epoch at learning rate 1.0 can end at a loss of millions: it never rises after that).
DIVERGENCE_CHANCE_FACTOR = 10.0
# Not learning: the best training accuracy stayed within this margin of chance (the training majority share,
# or 1/K), or the last training loss stayed above this share of the chance-level loss ln(K).
UNDERFIT_ACCURACY_MARGIN = 0.15
UNDERFIT_LOSS_SHARE = 0.9
# Flat: over the first epochs the training loss moved less than this share.
FLAT_EPOCHS = 3
FLAT_CHANGE = 0.01
# Oscillation: this share of the validation loss's steps change direction, each step this large.
OSCILLATION_FLIPS = 0.6
OSCILLATION_STEP = 0.10
OSCILLATION_MIN_EPOCHS = 5


def _series(history: EpochHistory, name: str) -> tuple[list[int], list[float]]:
    rows = [(row["epoch"], float(row[name])) for row in history if row.get(name) is not None]
    return [epoch for epoch, _ in rows], [value for _, value in rows]


def regularisers(config: RunConfig) -> tuple[list[str], list[str]]:
    """(used, unused) regularisers of the config, with the preset's reference values resolved."""
    from engine.models.registry import resolve_knobs

    try:
        knobs = resolve_knobs(config.model.architecture, config.model)
    except Exception:  # noqa: BLE001 - an unknown preset: read the config as written
        knobs = {"dropout_rate": config.model.dropout_rate or 0.0, "l2": config.model.l2 or 0.0}
    training = config.training
    checks = {
        f"dropout ({knobs['dropout_rate']:g})" if knobs["dropout_rate"] else "dropout": knobs["dropout_rate"] > 0,
        f"L2 ({knobs['l2']:g})" if knobs["l2"] else "L2 weight penalty": knobs["l2"] > 0,
        "augmentation (" + ", ".join(training.augmentations) + ")" if training.augment else "augmentation":
            training.augment and bool(training.augmentations),
        f"early stopping (patience {training.patience})" if training.early_stopping else "early stopping":
            training.early_stopping,
    }
    if training.optimizer == "adamw":
        checks[f"weight decay ({training.weight_decay:g})"] = training.weight_decay > 0
    return [name for name, on in checks.items() if on], [name for name, on in checks.items() if not on]


def chance_loss(num_classes: int) -> float:
    """The cross-entropy of a chance-level prediction (1/K for each of K classes): ln(K)."""
    return float(np.log(max(int(num_classes), 2)))


def chance_accuracy(num_classes: int, train_counts: Sequence[int] | None = None) -> float:
    """The training accuracy of always answering the training majority class (1/K when the counts are unknown)."""
    if train_counts is not None and sum(train_counts):
        return max(train_counts) / sum(train_counts)
    return 1 / max(int(num_classes), 2)


def not_learning(history: EpochHistory, num_classes: int | None,
                 train_counts: Sequence[int] | None = None) -> dict[str, Any] | None:
    """The evidence that the model never learned the training set (None when it did, or it cannot be told):
    its best training accuracy within ``UNDERFIT_ACCURACY_MARGIN`` of chance, or its last training loss near
    the chance-level loss."""
    if not num_classes:
        return None
    _, accuracy = _series(history, "accuracy")
    _, loss = _series(history, "loss")
    chance_acc, chance = chance_accuracy(num_classes, train_counts), chance_loss(num_classes)
    best_accuracy = max((a for a in accuracy if math.isfinite(a)), default=None)
    last_loss = loss[-1] if loss and math.isfinite(loss[-1]) else None
    by_accuracy = best_accuracy is not None and best_accuracy <= chance_acc + UNDERFIT_ACCURACY_MARGIN
    by_loss = best_accuracy is None and last_loss is not None and last_loss >= UNDERFIT_LOSS_SHARE * chance
    if not (by_accuracy or by_loss):
        return None
    return {"best_train_accuracy": best_accuracy, "chance_accuracy": chance_acc, "last_train_loss": last_loss,
            "chance_loss": chance, "margin": UNDERFIT_ACCURACY_MARGIN}


def underfitting(history: EpochHistory, config: RunConfig, evidence: dict[str, Any]) -> Finding:
    """A model that never learned the training set: fitting advice, not regularisation."""
    epochs, loss = _series(history, "loss")
    _, val_loss = _series(history, "val_loss")
    rate = config.training.learning_rate
    if evidence["best_train_accuracy"] is not None:
        what = (f"its best training accuracy is {evidence['best_train_accuracy']:.2f}, against "
                f"{evidence['chance_accuracy']:.2f} for always answering the majority class")
    else:
        what = (f"its last training loss {evidence['last_train_loss']:.4g} is near the chance level "
                f"{evidence['chance_loss']:.3f} (ln of the class count)")
    return Finding(
        id="underfitting", severity=Severity.PROBLEM if len(epochs) >= 3 else Severity.WARNING,
        title=f"Not learning (underfitting): after {len(epochs)} epoch(s) {what}",
        suggestion=f"Make the model fit the training set before fighting overfitting: find a learning rate with "
        f"the range test (`python -m engine lr-find`; this run used {rate:g}), train more epochs, check that the "
        "inputs are normalised and the labels match the volumes, and widen the model or remove regularisation "
        "(dropout, L2) if it still does not fit.",
        epoch=epochs[-1] if epochs else None,
        evidence=evidence | {"learning_rate": rate, "epochs": epochs, "loss": loss,
                             "val_loss": val_loss if len(val_loss) == len(epochs) else []},
    )


def fitting(history: EpochHistory, config: RunConfig, num_classes: int | None = None,
            train_counts: Sequence[int] | None = None) -> Finding | None:
    """Overfitting, or underfitting when the overfitting rule fires on a model that never learned
    (a validation loss that rises while the training accuracy stays near chance is not memorisation)."""
    found = overfitting(history, config)
    if found is None:
        return None
    evidence = not_learning(history, num_classes, train_counts)
    return found if evidence is None else underfitting(history, config, evidence)


def overfitting(history: EpochHistory, config: RunConfig) -> Finding | None:
    epochs, val_loss = _series(history, "val_loss")
    train = dict(zip(*_series(history, "loss")))
    if len(val_loss) < 3 or not all(map(math.isfinite, val_loss)):
        return None
    best = int(np.argmin(val_loss))
    best_epoch, last_epoch = epochs[best], epochs[-1]
    past = last_epoch - best_epoch
    rise = (val_loss[-1] - val_loss[best]) / max(val_loss[best], 1e-8)
    gap_best = val_loss[best] - train.get(best_epoch, float("nan"))
    gap_last = val_loss[-1] - train.get(last_epoch, float("nan"))
    accuracy = dict(zip(*_series(history, "accuracy")))
    val_accuracy = dict(zip(*_series(history, "val_accuracy")))
    accuracy_gap = accuracy.get(last_epoch, float("nan")) - val_accuracy.get(last_epoch, float("nan"))
    rising = past >= OVERFIT_MIN_EPOCHS_PAST and rise >= OVERFIT_RISE and gap_last > gap_best
    memorising = accuracy_gap >= MEMORISE_GAP and accuracy.get(last_epoch, 0.0) >= 0.95
    if not (rising or memorising):
        return None
    used, unused = regularisers(config)
    severity = Severity.PROBLEM if (rising and rise >= OVERFIT_PROBLEM_RISE) or memorising else Severity.WARNING
    title = (
        f"Overfitting: the validation loss was lowest at epoch {best_epoch} ({val_loss[best]:.4f}) and training "
        f"ran {past} more epoch(s), to {val_loss[-1]:.4f} (+{rise:.0%})"
        if rising else
        f"Overfitting: training accuracy {accuracy[last_epoch]:.2f} against validation accuracy "
        f"{val_accuracy[last_epoch]:.2f} at epoch {last_epoch}"
    )
    advice = ["keep the weights of the best epoch (the lab's best.keras does) and stop earlier"]
    if unused:
        advice.append("add " + ", ".join(unused))
    advice.append("more training samples or a narrower model (width multiplier) help more than any knob")
    return Finding(
        id="overfitting",
        severity=severity,
        title=title,
        suggestion=(lambda text: text[0].upper() + text[1:])("; ".join(advice)) + ".",
        epoch=best_epoch,
        evidence={
            "best_epoch": best_epoch, "best_val_loss": val_loss[best], "last_epoch": last_epoch,
            "last_val_loss": val_loss[-1], "epochs_past_minimum": past, "val_loss_rise": rise,
            "gap_at_best": gap_best, "gap_at_last": gap_last, "accuracy_gap_at_last": accuracy_gap,
            "regularisers_used": used, "regularisers_unused": unused,
            "epochs": epochs, "loss": [train.get(epoch) for epoch in epochs], "val_loss": val_loss,
        },
    )


def learning_rate(history: EpochHistory, config: RunConfig, error: str | None = None,
                  num_classes: int | None = None) -> list[Finding]:
    """Divergence or NaN, a flat start, an oscillating validation loss. With ``num_classes``, a training loss
    far above the chance-level loss ln(K) is divergence even when it never rose (it exploded in epoch 1)."""
    rate = config.training.learning_rate
    epochs, loss = _series(history, "loss")
    findings: list[Finding] = []
    finite = [value for value in loss if math.isfinite(value)]
    nan_epoch = next((epoch for epoch, value in zip(epochs, loss) if not math.isfinite(value)), None)
    nan_in_error = bool(error) and "nan" in error.lower()
    peak = max(finite) if finite else float("nan")
    rose = len(finite) >= 2 and peak > DIVERGENCE_FACTOR * finite[0] and finite[-1] > finite[0]
    chance = chance_loss(num_classes) if num_classes else None
    exploded = chance is not None and bool(finite) and peak > DIVERGENCE_CHANCE_FACTOR * chance
    if nan_epoch is not None or nan_in_error or rose or exploded:
        where = nan_epoch or (epochs[int(np.argmax(loss))] if finite else None)
        if nan_epoch is not None or nan_in_error:
            what = "the loss became NaN"
        elif rose:
            what = f"the training loss rose from {finite[0]:.4g} to {peak:.4g}"
        else:
            what = (f"the training loss reached {peak:.4g}, {peak / chance:,.0f} times the {chance:.3f} of a "
                    f"chance-level prediction (ln {num_classes})")
        findings.append(Finding(
            id="divergence", severity=Severity.PROBLEM,
            title=f"Divergence: {what} at learning rate {rate:g}",
            suggestion="Lower the learning rate by 10x (or run the learning-rate range test: "
            "`python -m engine lr-find`), or enable BatchNorm; with SGD, lower the momentum.",
            epoch=where,
            evidence={"learning_rate": rate, "first_loss": finite[0] if finite else None, "peak_loss": peak,
                      "chance_loss": chance, "nan_epoch": nan_epoch, "error": error, "epochs": epochs, "loss": loss},
        ))
        return findings
    if len(finite) >= FLAT_EPOCHS:
        head = finite[:FLAT_EPOCHS]
        change = (max(head) - min(head)) / max(abs(head[0]), 1e-8)
        if change < FLAT_CHANGE:
            findings.append(Finding(
                id="flat_loss", severity=Severity.WARNING,
                title=f"Flat loss: the training loss moved {change:.2%} over the first {FLAT_EPOCHS} epochs "
                f"(learning rate {rate:g})",
                suggestion="The rate is likely too low (or so high the units died): run the learning-rate range "
                "test and start from its suggestion; check that the inputs are normalised.",
                epoch=epochs[FLAT_EPOCHS - 1],
                evidence={"learning_rate": rate, "relative_change": change, "epochs": epochs, "loss": loss},
            ))
    val_epochs, val_loss = _series(history, "val_loss")
    if len(val_loss) >= OSCILLATION_MIN_EPOCHS and all(map(math.isfinite, val_loss)):
        steps = np.diff(val_loss)
        big = np.abs(steps) >= OSCILLATION_STEP * np.mean(val_loss)
        flips = int(np.sum(np.sign(steps[1:]) != np.sign(steps[:-1])))
        share = flips / max(1, len(steps) - 1)
        if share >= OSCILLATION_FLIPS and np.mean(big) >= 0.5:
            findings.append(Finding(
                id="oscillation", severity=Severity.WARNING,
                title=f"The validation loss oscillates: it changed direction {flips} times in {len(steps)} steps",
                suggestion="Lower the learning rate or use a decaying schedule (exponential, cosine or plateau); "
                "a larger batch also steadies the updates.",
                epoch=val_epochs[-1],
                evidence={"learning_rate": rate, "direction_changes": flips, "steps": len(steps),
                          "mean_step": float(np.mean(np.abs(steps))), "epochs": val_epochs, "val_loss": val_loss},
            ))
    return findings
