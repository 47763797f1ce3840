"""The remedy of each doctor finding: what changes in a run's config to treat it.

A remedy is a pure function of the run's config and the finding (its evidence),
returning the fields it changes with one sentence of reason each. Findings are
matched by their ``id`` (engine/doctor/findings.py); a finding with an id this
catalogue does not know simply has no remedy, so new doctor checks never break
it. A finding may have several remedies (a BatchNorm gap: a lower momentum or
no BatchNorm at all); the first is the one offered by default.

Only the learning-rate remedy needs something measured: the rate the range
test (``python -m engine lr-find``) suggests. The caller passes a function that
runs the test (``engine.probe.find_learning_rate`` in a subprocess, so the
dashboard never imports TensorFlow); everything else here is plain Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import AUGMENTATIONS, RunConfig
from engine.doctor.findings import Finding
from engine.errors import ConfigError

# Runs the learning-rate range test on a config dict; returns lr-find's result ({"run_id", "suggestion", ...}).
RangeTest = Callable[[dict[str, Any]], dict[str, Any]]

# Overfitting: dropout raised by this much (at most MAX_DROPOUT), L2 to at least MIN_L2 (x10 when already on).
DROPOUT_STEP = 0.2
MAX_DROPOUT = 0.6
MIN_L2 = 1e-4
MAX_L2 = 1e-2
# BatchNorm gap: the momenta tried, highest first; below FEW_STEPS steps per epoch 0.9 adapts too slowly
# (0.9 ** 10 keeps 35 % of the old statistics after an epoch), so it starts at 0.8.
BN_MOMENTA = (0.9, 0.8, 0.6)
FEW_STEPS = 20
# Divergence with a range-test suggestion at or above the rate that diverged: that rate / 10 instead.
DIVERGENCE_DIVISOR = 10.0


@dataclass(frozen=True)
class Change:
    """One field a remedy changes: ``field`` is dotted ("model.dropout_rate"), ``reason`` one sentence."""

    field: str
    old: Any
    new: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new, "reason": self.reason}

    def text(self) -> str:
        """"model.dropout_rate 0.3 -> 0.5"."""
        return f"{self.field} {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True)
class Remedy:
    id: str
    title: str
    # The finding ids it treats.
    findings: tuple[str, ...]
    # Whether applying it runs the learning-rate range test (tens of seconds).
    range_test: bool = False


@dataclass(frozen=True)
class Prescription:
    """A remedy applied to one config: the fixed config and what changed (and the range test's run, if any)."""

    remedy: Remedy
    config: RunConfig
    changes: tuple[Change, ...]
    range_test_run: int | None = None


REMEDIES: dict[str, Remedy] = {remedy.id: remedy for remedy in (
    Remedy("regularise", "More dropout and L2, augmentation and early stopping", ("overfitting",)),
    Remedy("augment", "Augmentation and early stopping only", ("overfitting",)),
    Remedy("bn_momentum", "A lower BatchNorm momentum", ("batchnorm_gap",)),
    Remedy("no_batchnorm", "BatchNorm off", ("batchnorm_gap",)),
    Remedy("class_weights", "Balanced class weights", ("imbalance", "collapse")),
    Remedy("focal_loss", "Focal loss (gamma 2)", ("imbalance", "collapse")),
    Remedy("range_test_lr", "The learning rate from the range test", ("divergence", "flat_loss"), range_test=True),
    Remedy("cosine_schedule", "A cosine-decaying learning rate", ("oscillation",)),
    Remedy("zscore", "Per-volume z-score normalisation", ("input_scale",)),
    Remedy("stratified_resplit", "A stratified re-split of every sample", ("single_class_split",)),
)}


def remedies_for(finding_id: str) -> list[Remedy]:
    """The remedies of a finding id, the default first; [] for a finding without one (or an unknown id)."""
    return [remedy for remedy in REMEDIES.values() if finding_id in remedy.findings]


def fixable(finding: Finding) -> bool:
    return bool(remedies_for(finding.id))


def prescribe(config: RunConfig, finding: Finding, remedy_id: str | None = None, *,
              range_test: RangeTest | None = None) -> Prescription:
    """``config`` with ``finding``'s remedy applied (the default one, or ``remedy_id``).

    ConfigError (one sentence) when the finding has no remedy, ``remedy_id`` does not treat it, or the
    config already has everything the remedy would set.
    """
    choices = remedies_for(finding.id)
    if not choices:
        raise ConfigError([f"The finding '{finding.id}' has no automatic remedy; follow its advice by hand "
                           "(findings with one: " + ", ".join(sorted({f for r in REMEDIES.values()
                                                                      for f in r.findings})) + ")."])
    if remedy_id is None:
        remedy = choices[0]
    elif remedy_id in {choice.id for choice in choices}:
        remedy = REMEDIES[remedy_id]
    else:
        raise ConfigError([f"Remedy '{remedy_id}' does not treat '{finding.id}'; choose one of "
                           + ", ".join(choice.id for choice in choices) + "."])
    fixed = config.copy()
    fixed.name = ""
    range_test_run = None
    if remedy.range_test:
        changes, range_test_run = _range_test_rate(fixed, finding, range_test)
    else:
        changes = _APPLY[remedy.id](fixed, finding)
    if not changes:
        raise ConfigError([f"The run already has what '{remedy.id}' ({remedy.title.lower()}) would set; "
                           "there is nothing to compare. Choose another remedy or change the config by hand."])
    problems = fixed.field_problems()
    if problems:  # a remedy must never produce a config the lab refuses
        raise ConfigError(problems)
    return Prescription(remedy, fixed, tuple(changes), range_test_run)


# ------------------------------------------------------------------ the remedies
def _effective(config: RunConfig, knob: str) -> Any:
    """The model knob's value as built: the config's, or the preset's reference value when it is None."""
    from engine.compare import effective_config

    return effective_config(config).get(f"model.{knob}")


def _set(config: RunConfig, dotted: str, new: Any, reason: str, changes: list[Change], old: Any = None) -> None:
    section, name = dotted.split(".")
    current = getattr(getattr(config, section), name) if old is None else old
    if current == new:
        return
    setattr(getattr(config, section), name, new)
    changes.append(Change(dotted, current, new, reason))


def _early_stopping_and_augmentation(config: RunConfig, changes: list[Change]) -> None:
    training = config.training
    if not training.augment or not training.augmentations:
        _set(config, "training.augment", True, "random flips, shifts and intensity changes show the network "
             "variants of each training volume, so it cannot learn the volumes by heart", changes)
        if not training.augmentations:
            _set(config, "training.augmentations", list(AUGMENTATIONS), "every augmentation the lab offers",
                 changes)
    _set(config, "training.early_stopping", True, f"training stops {training.patience} epochs after the "
         f"best {training.monitor}, instead of running on while the validation loss rises", changes)


def _regularise(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    dropout = float(_effective(config, "dropout_rate") or 0.0)
    if dropout < MAX_DROPOUT:
        new = round(min(MAX_DROPOUT, dropout + DROPOUT_STEP), 2)
        _set(config, "model.dropout_rate", new, f"dropout {dropout:g} -> {new:g}: more units silenced per "
             "step, so no single feature can carry a memorised sample", changes, old=dropout)
    l2 = float(_effective(config, "l2") or 0.0)
    if l2 < MAX_L2:
        new_l2 = min(MAX_L2, max(MIN_L2, l2 * 10))
        _set(config, "model.l2", new_l2, "a larger weight penalty keeps the weights small, which limits "
             "how sharply the model can fit single samples", changes, old=l2)
    _early_stopping_and_augmentation(config, changes)
    return changes


def _augment(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    _early_stopping_and_augmentation(config, changes)
    return changes


def _bn_momentum(config: RunConfig, finding: Finding) -> list[Change]:
    current = float(config.model.batchnorm_momentum)
    steps = finding.evidence.get("steps_per_epoch")
    few = steps is not None and float(steps) < FEW_STEPS
    choices = [m for m in BN_MOMENTA if m < current and not (few and m > 0.8)]
    if not choices:
        return []
    new = choices[0]
    why = f" ({steps:.0f} steps per epoch)" if steps is not None else ""
    changes: list[Change] = []
    _set(config, "model.batchnorm_momentum", new, f"the moving statistics then keep {new:g}^steps of their old "
         f"value per epoch{why}, so they follow the weights instead of lagging behind them", changes)
    if not _effective(config, "batchnorm"):
        _set(config, "model.batchnorm", True, "the momentum matters only with BatchNorm on", changes)
    return changes


def _no_batchnorm(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    if _effective(config, "batchnorm"):
        _set(config, "model.batchnorm", False, "without BatchNorm the model behaves the same in training and "
             "inference; the gap cannot arise", changes, old=True)
    return changes


def _class_weights(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    _set(config, "training.class_weight", "balanced", "each class weighs n_samples / (n_classes x its "
         "count) in the loss, so answering the common class no longer pays", changes)
    return changes


def _focal_loss(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    _set(config, "training.loss", "focal", "focal loss down-weights the samples the model already gets "
         "right (mostly the common class), so the rare class drives the gradient", changes)
    if config.training.focal_gamma == 0:
        _set(config, "training.focal_gamma", 2.0, "gamma 0 would be plain cross-entropy", changes)
    return changes


def _cosine_schedule(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    _set(config, "training.schedule", "cosine", "the rate decays to 0 over the epochs, so the late steps "
         "are too small to jump across the minimum", changes)
    return changes


def _zscore(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    _set(config, "data.normalization", "zscore", "each volume is scaled to mean 0 and standard deviation 1, "
         "the scale the initial weights and the learning rate assume", changes)
    return changes


def _range_test_rate(config: RunConfig, finding: Finding, range_test: RangeTest | None
                     ) -> tuple[list[Change], int | None]:
    if range_test is None:
        from engine import probe

        range_test = probe.find_learning_rate
    probe_config = config.copy()
    probe_config.name = ""
    result = range_test(probe_config.to_dict())
    suggested = float(result["suggestion"]["suggested"])
    current = float(config.training.learning_rate)
    new, why = suggested, f"the range test (run #{result.get('run_id')}) suggests {suggested:.3g}, where the loss " \
                         "falls fastest"
    if finding.id == "divergence" and suggested >= current:
        new = current / DIVERGENCE_DIVISOR
        why = (f"the range test (run #{result.get('run_id')}) suggests {suggested:.3g}, no lower than the rate "
               f"that diverged, so the rate is divided by {DIVERGENCE_DIVISOR:g} instead")
    new = float(f"{new:.3g}")
    changes: list[Change] = []
    _set(config, "training.learning_rate", new, why, changes)
    return changes, result.get("run_id")


def _stratified_resplit(config: RunConfig, finding: Finding) -> list[Change]:
    changes: list[Change] = []
    if finding.evidence.get("predefined", True):
        _set(config, "data.predefined_split", False, "the dataset's own split is set aside and every sample is "
             "split stratified by class (group-aware), so each split holds every class", changes)
    return changes


_APPLY: dict[str, Callable[[RunConfig, Finding], list[Change]]] = {
    "regularise": _regularise, "augment": _augment, "bn_momentum": _bn_momentum, "no_batchnorm": _no_batchnorm,
    "class_weights": _class_weights, "focal_loss": _focal_loss, "cosine_schedule": _cosine_schedule,
    "zscore": _zscore, "stratified_resplit": _stratified_resplit,
}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


__all__ = ["Change", "Prescription", "REMEDIES", "RangeTest", "Remedy", "fixable", "prescribe", "remedies_for"]
