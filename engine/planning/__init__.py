"""An automatic training plan: a complete RunConfig decided from the dataset's and the machine's fingerprint.

nnU-Net showed that most of a training plan follows from a dataset's
fingerprint with no hand-tuning. This module does the same for classification:
each rule below reads the fingerprint (engine.planning.fingerprint), sets one
or a few config fields and says why in one sentence (a ``Choice``). The plan is
a starting point, not a verdict: the Train page fills its form from it and the
person can change any field before launching.

Parameter counts and activation sizes come from building the candidate models
(``engine.models.describe``), and the learning rate from a short range test
(``engine.training.lr_find``), so this module needs TensorFlow at run time; the
dashboard runs it in a subprocess (``engine.probe.plan``), never in its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine import models, validation
from engine.config import DataConfig, ModelConfig, RunConfig, TrainingConfig
from engine.datasets.preprocess import UNIT_SCALE_LIMIT
from engine.errors import ConfigError, DataError
from engine.planning import fingerprint as fingerprints
from engine.planning.fingerprint import DatasetFingerprint, MachineFingerprint

# ------------------------------------------------------------------ the rules' constants
# Share of the free memory (GPU memory, else free RAM) a planned run may take: the estimate is rough.
MEMORY_SHARE_CPU = 0.5
MEMORY_SHARE_GPU = 0.8
# The most voxels per volume a plan trains on (a larger volume is resampled down, keeping its aspect ratio).
MAX_VOXELS_CPU = 64**3
MAX_VOXELS_GPU = 128**3
# Architectures in order of preference: BatchNorm, global average pooling, "same" padding first.
ARCHITECTURE_PREFERENCE = ("kerasio3d", "resnet3d", "compact3d", "tutorial3d")
WIDTHS = (0.125, 0.25, 0.5, 1.0)
# Parameters per training sample: above the high end a model memorises small data; the plan takes the
# widest model at or under it.
PARAMS_PER_SAMPLE = (50.0, 1000.0)
MAX_BATCH = 32
# At least this many batches per epoch, so BatchNorm's moving statistics and early stopping see enough steps.
MIN_STEPS_PER_EPOCH = 16
MIN_BATCH = 4
# BatchNorm momentum candidates: the largest whose averaging horizon 1 / (1 - m) batches fits in an epoch.
BATCHNORM_MOMENTA = (0.99, 0.95, 0.9, 0.8)
# Training length: about this many optimiser steps in all, within these epochs.
TARGET_STEPS = 600
EPOCH_RANGE = (15, 100)
# Classes this unequal (largest / smallest) get balanced class weights.
IMBALANCE_RATIO = 1.5
# Fewer samples than this are cross-validated (k folds) instead of judged on one small validation split.
SMALL_DATASET = 300
MAX_FOLDS = 5
# The augmentations a plan switches on: flips and 90° turns are left off, as side (laterality) or
# orientation may carry the label.
PLANNED_AUGMENTATIONS = ["shift", "intensity"]
# The learning-rate range test of a plan: fewer batches than lr-find's default, and the rate kept in a
# range sensible for Adam.
LR_TEST_STEPS = 60
LR_TEST_MIN, LR_TEST_MAX = 1e-6, 1.0
LEARNING_RATE_RANGE = (1e-5, 1e-2)
DEFAULT_LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Choice:
    """One decision of a plan: the config field (``training.batch_size``), its value and why."""

    field: str
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "reason": self.reason}


@dataclass
class Plan:
    config: RunConfig
    choices: list[Choice]
    dataset: DatasetFingerprint
    machine: MachineFingerprint
    notes: list[str] = field(default_factory=list)
    lr_test: dict[str, Any] | None = None  # the range test's run id and suggestion, when one ran

    def reason(self, field_name: str) -> str | None:
        return next((c.reason for c in self.choices if c.field == field_name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(), "choices": [c.to_dict() for c in self.choices],
            "dataset": self.dataset.to_dict(), "machine": self.machine.to_dict(), "notes": list(self.notes),
            "lr_test": self.lr_test,
        }


class _Planner:
    """Accumulates the config and its reasons; one method per rule, in the order they depend on each other."""

    def __init__(self, data: DatasetFingerprint, machine: MachineFingerprint, seed: int):
        self.data, self.machine = data, machine
        self.config = RunConfig(
            data=DataConfig(dataset=data.dataset, options=dict(data.options)),
            model=ModelConfig(), training=TrainingConfig(seed=seed),
        )
        self.choices: list[Choice] = []
        self.notes: list[str] = []
        self.description: dict[str, Any] = {}

    def choose(self, field_name: str, value: Any, reason: str) -> None:
        section, _, name = field_name.partition(".")
        if section == "data" and name.startswith("options."):
            self.config.data.options[name.removeprefix("options.")] = value
        else:
            setattr(getattr(self.config, section), name, value)
        self.choices.append(Choice(field_name, value, reason))

    # -------------------------------------------------------------- memory and shape
    @property
    def memory_budget(self) -> int | None:
        total = self.machine.memory_bytes
        share = MEMORY_SHARE_GPU if self.machine.gpu else MEMORY_SHARE_CPU
        return None if total is None else int(total * share)

    @property
    def train_samples(self) -> int:
        """Samples the model trains on: the dataset less its test and validation shares (or own splits)."""
        data, own = self.config.data, self.data.predefined_splits
        held = own.get("test", round(self.data.num_samples * data.test_fraction))
        if data.folds:
            remaining = self.data.num_samples - held
            return max(1, remaining - math.ceil(remaining / data.folds))
        held += own.get("val", round(self.data.num_samples * data.val_fraction))
        return max(1, self.data.num_samples - held)

    def shape(self) -> None:
        """Keep the stored shape when it fits; else the largest shape of the same physical aspect ratio that does."""
        stored = list(self.data.volume_shape[:3])
        spacing = self.data.spacing or [1.0, 1.0, 1.0]
        extent = [edge * step for edge, step in zip(stored, spacing)]
        cap = MAX_VOXELS_GPU if self.machine.gpu else MAX_VOXELS_CPU
        cap_text = f"the {'GPU' if self.machine.gpu else 'CPU'} cap of {round(cap ** (1 / 3))}^3 voxels"
        spacing_text = (f" ({' x '.join(f'{s:g}' for s in spacing)} mm voxels)" if self.data.spacing else "")
        target = stored
        if math.prod(stored) > cap:
            scale = (cap / math.prod(extent)) ** (1 / 3)
            target = [max(1, min(edge, int(length * scale))) for edge, length in zip(stored, extent)]
        if target == stored:
            why = f"{'x'.join(map(str, stored))} voxels as stored{spacing_text}: within {cap_text}"
        else:
            why = (f"{'x'.join(map(str, target))} instead of {'x'.join(map(str, stored))}: the physical aspect ratio "
                   f"({' x '.join(f'{e:.0f}' for e in extent)}{' mm' if self.data.spacing else ' voxels'}) kept, "
                   f"within {cap_text}")
        if "size" in self.data.options:  # a built-in's cubic edge is a knob of its generator
            self.choose("data.options.size", int(min(target)), why)
        elif target != stored:
            self.notes.append(
                f"The volumes are {'x'.join(map(str, stored))}; the plan would train at {why}. An imported dataset's shape is fixed when it is "
                f"imported: import it again with `--shape {' '.join(map(str, target))}` to train at that shape "
                "(this plan keeps the stored shape)."
            )

    # -------------------------------------------------------------- intensities
    def normalisation(self) -> None:
        data, done = self.data, self.data.preprocessing
        applied = [f"{key} {value}" for key, value in done.items()
                   if key in ("window", "clip_percentiles", "normalization") and value not in (None, "none")]
        clipped = bool(done.get("window") or done.get("clip_percentiles"))
        if data.modality == "CT" and done.get("window"):
            self.choose("data.normalization", "none",
                        f"{data.modality_source}: the import already clipped to the {done['window']} window and "
                        "scaled to [0, 1], so nothing is applied twice")
        elif data.modality == "CT":
            self.choose("data.normalization", "zscore",
                        f"{data.modality_source}, but imported without a window: a per-volume z-score for now")
            self.notes.append("The CT volumes were imported without a window; import them again with "
                              "`--window soft_tissue` (or the window of your organ) to clip them to it.")
        elif data.modality == "MR" and not clipped:
            # A foreground z-score ignores any per-volume shift and scale applied before it (an import's
            # z-score or min-max), so it is never "twice".
            before = f"; it replaces the import's {', '.join(applied)} exactly" if applied else ""
            self.choose("data.normalization", "zscore_fg",
                        f"{data.modality_source}: MR values have no fixed unit, so each volume is z-scored over its "
                        f"foreground (about {data.intensity['foreground_share']:.0%} of the voxels), not the air{before}")
        elif applied:
            self.choose("data.normalization", "none",
                        f"the import already scaled the intensities ({', '.join(applied)}), so nothing twice")
        elif max(abs(data.intensity["p1"]), abs(data.intensity["p99"])) > UNIT_SCALE_LIMIT:
            self.choose("data.normalization", "zscore",
                        f"modality {data.modality_source}; values from {data.intensity['p1']:.4g} to "
                        f"{data.intensity['p99']:.4g} (1st-99th percentile) are far from unit scale: per-volume z-score")
        else:
            self.choose("data.normalization", "none",
                        f"modality {data.modality_source}; values from {data.intensity['p1']:.3g} to "
                        f"{data.intensity['p99']:.3g} (1st-99th percentile) are already near unit scale")

    # -------------------------------------------------------------- splits
    def folds(self) -> None:
        data = self.data
        if data.num_samples >= SMALL_DATASET or data.predefined_splits.get("val"):
            return
        pool = min(data.class_counts) * (1 - self.config.data.test_fraction)
        k = min(MAX_FOLDS, int(pool))
        if k >= 3:
            self.choose("data.folds", k,
                        f"{data.num_samples} samples (fewer than {SMALL_DATASET}): {k}-fold cross-validation judges "
                        "the plan on every sample instead of one small validation split")

    # -------------------------------------------------------------- model
    def _describe(self, architecture: str, width: float, padding: str | None) -> dict[str, Any] | None:
        model = ModelConfig(architecture=architecture, width_multiplier=width, padding=padding)
        try:
            return models.describe(architecture, self._input_shape(), self.data.num_classes, model, batch_size=1)
        except ConfigError:
            return None

    def _input_shape(self) -> tuple[int, int, int, int]:
        shape = list(self.data.volume_shape)
        if "size" in self.config.data.options:
            shape[:3] = [int(self.config.data.options["size"])] * 3
        return (shape[0], shape[1], shape[2], shape[3])

    def architecture(self) -> None:
        smallest = min(self._input_shape()[:3])
        for architecture in ARCHITECTURE_PREFERENCE:
            spec = models.ARCHITECTURES[architecture]
            padding = "same" if "same" in spec.paddings else spec.paddings[0]
            if spec.min_edge(padding) <= smallest:
                break
        else:
            raise DataError(f"The volumes' smallest edge is {smallest} voxels, too small for every architecture; "
                            "import or generate them at 16 voxels per edge or more.")
        low, high = PARAMS_PER_SAMPLE
        train = self.train_samples
        described = [(width, self._describe(architecture, width, padding)) for width in WIDTHS]
        counted: list[tuple[float, dict[str, Any]]] = [(width, info) for width, info in described if info is not None]
        if not counted:
            raise DataError(f"{architecture} cannot take volumes of {self._input_shape()}; resample them.")
        fitting = [(width, info) for width, info in counted if info["params"] / train <= high]
        width, info = fitting[-1] if fitting else counted[0]
        per_sample = info["params"] / train
        wider = next((i for w, i in counted if w > width), None)
        self.choose("model.architecture", architecture,
                    f"the first of {', '.join(ARCHITECTURE_PREFERENCE)} (BatchNorm and global pooling first) "
                    f"whose pooling fits edges of {smallest} voxels")
        if padding != spec.defaults.get("padding"):
            self.choose("model.padding", padding, "'same' padding keeps each convolution's output the size of its "
                                                  "input, so the four poolings fit small volumes")
        range_text = f"the sensible range is {low:g}-{high:g}"
        if fitting:
            beyond = (f"; x{WIDTHS[WIDTHS.index(width) + 1]:g} would have {wider['params'] / train:,.0f}"
                      if wider else "")
            why = (f"{info['params']:,} parameters, {per_sample:,.0f} per training sample ({train} samples; "
                   f"{range_text}){beyond}")
        else:
            why = (f"the narrowest: {info['params']:,} parameters are still {per_sample:,.0f} per training sample "
                   f"({train} samples; {range_text}); more data or augmentation is the remedy")
        if per_sample < low:
            why += "; even the widest is small for this much data"
        self.choose("model.width_multiplier", width, why)
        self.description = info

    def batch_size(self) -> None:
        info, budget, train = self.description, self.memory_budget, self.train_samples
        # describe()'s estimate: weights, gradients and Adam's slots (4 copies) plus two copies of a batch's
        # activations (summary.COPIES_OF_*).
        fixed = info["params"] * 4 * 4
        per_sample = 2 * info["activation_bytes_per_sample"]
        by_memory = MAX_BATCH if budget is None else max(1, (budget - fixed) // max(1, per_sample))
        by_steps = max(1, train // MIN_STEPS_PER_EPOCH)
        batch = max(min(MIN_BATCH, train), min(MAX_BATCH, by_memory, by_steps))
        batch = 2 ** int(math.log2(batch))
        memory_text = ("memory unknown" if budget is None else
                       f"{batch} volumes need about {_mebibytes(fixed + batch * per_sample)} of the "
                       f"{_mebibytes(budget)} this plan allows on {self.machine.device}")
        steps = math.ceil(train / batch)
        self.choose("training.batch_size", batch,
                    f"{steps} batches per epoch from {train} training samples (at least {MIN_STEPS_PER_EPOCH} "
                    f"wanted, at most {MAX_BATCH} a batch); {memory_text}")

    def batchnorm(self) -> None:
        if not models.resolve_knobs(self.config.model.architecture, self.config.model)["batchnorm"]:
            return
        steps = math.ceil(self.train_samples / self.config.training.batch_size)
        momentum = next((m for m in BATCHNORM_MOMENTA if 1 / (1 - m) <= steps), BATCHNORM_MOMENTA[-1])
        self.choose("model.batchnorm_momentum", momentum,
                    f"with {steps} batches per epoch, momentum {momentum:g} averages about {1 / (1 - momentum):.0f} "
                    "batches, so the statistics used at inference catch up within an epoch (0.99 averages 100: "
                    "the one-class validation of phantom_lesions)")

    # -------------------------------------------------------------- training
    def training(self) -> None:
        data = self.data
        ratio = data.imbalance
        counts = ", ".join(f"{name} {count}" for name, count in zip(data.class_names, data.class_counts))
        if ratio > IMBALANCE_RATIO:
            self.choose("training.class_weight", "balanced",
                        f"the classes are imbalanced ({counts}; {ratio:.1f} : 1): each class weighs the same in the loss")
        else:
            self.choose("training.class_weight", "none",
                        f"the classes are balanced enough ({counts}; at most {IMBALANCE_RATIO:g} : 1)")
        self.choose("training.augment", True,
                    f"{self.train_samples} training samples: random shifts and intensity jitter show each one anew "
                    "every epoch (flips and 90° turns are off: side or orientation may carry the label)")
        self.choose("training.augmentations", list(PLANNED_AUGMENTATIONS), "shifts and intensity jitter only")
        steps = math.ceil(self.train_samples / self.config.training.batch_size)
        low, high = EPOCH_RANGE
        epochs = min(high, max(low, math.ceil(TARGET_STEPS / steps)))
        patience = max(5, epochs // 4)
        self.choose("training.epochs", epochs,
                    f"about {TARGET_STEPS} optimiser steps at {steps} per epoch (within {low}-{high} epochs); "
                    "early stopping ends it sooner")
        self.choose("training.early_stopping", True, "stops when the validation loss has not improved for "
                                                     f"{patience} epochs; the best epoch's weights are evaluated")
        self.choose("training.patience", patience, f"a quarter of the {epochs} epochs, at least 5")
        self.choose("training.monitor", "val_loss", "the validation loss moves smoothly where the accuracy of "
                                                    "a small validation set jumps")

    def learning_rate(self, lr_test: bool, store, steps: int) -> dict[str, Any] | None:
        self.config.training.optimizer = "adam"
        if not lr_test:
            self.choose("training.learning_rate", DEFAULT_LEARNING_RATE,
                        f"Adam's usual {DEFAULT_LEARNING_RATE:g}: the range test was skipped (--no-lr-test)")
            return None
        from engine.training.lr_find import find_learning_rate

        config = validation.validate(self.config.copy())
        config.name = f"lr-find for a plan of {self.data.dataset}"
        result = find_learning_rate(store, config, min_lr=LR_TEST_MIN, max_lr=LR_TEST_MAX, steps=steps)
        suggested = float(result["suggestion"]["suggested"])
        low, high = LEARNING_RATE_RANGE
        rate = _one_two_five(min(high, max(low, suggested)))
        clamped = "" if low <= suggested <= high else f", kept within {low:g}-{high:g}"
        self.choose("training.learning_rate", rate,
                    f"the range test (run #{result['run_id']}, {result['steps']} batches) fell fastest at "
                    f"{suggested:.2g}{clamped}, rounded to {rate:g}")
        return {"run_id": result["run_id"], "steps": result["steps"], "suggestion": result["suggestion"]}


def _one_two_five(rate: float) -> float:
    """The nearest of 1, 2 and 5 times a power of ten on a log scale (the Train form's rates)."""
    exponent = math.floor(math.log10(rate))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 5)]
    return float(f"{min(candidates, key=lambda c: abs(math.log10(c) - math.log10(rate))):.0e}")


def _mebibytes(count: float) -> str:
    from engine.machine.memory import format_bytes

    return format_bytes(count)


def make_plan(dataset: str, options: dict[str, Any] | None = None, *, lr_test: bool = True, seed: int = 0,
              store=None, lr_steps: int = LR_TEST_STEPS) -> Plan:
    """The plan for ``dataset`` (with these knobs) on this machine; the config is validated before it is returned.

    ``lr_test`` runs the learning-rate range test (recorded as an lr-find run in ``store``, the default
    store when None); without it the rate is Adam's usual 1e-3.
    """
    planner = _Planner(fingerprints.dataset(dataset, options), fingerprints.machine(), seed)
    planner.shape()
    planner.normalisation()
    planner.folds()
    planner.architecture()
    planner.batch_size()
    planner.batchnorm()
    planner.training()
    if lr_test and store is None:
        from engine.store import open_store

        store = open_store()
    lr_result = planner.learning_rate(lr_test, store, lr_steps)
    planner.config.name = f"plan {dataset}"
    config = validation.validate(planner.config)
    return Plan(config=config, choices=planner.choices, dataset=planner.data, machine=planner.machine,
                notes=planner.notes, lr_test=lr_result)


__all__ = ["Choice", "Plan", "make_plan"]
