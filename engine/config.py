"""Run configuration: everything that defines a run, saved whole with it.

``RunConfig`` has three sections (data, model, training). Defaults are the
settings of the demo run: digits3d with the 3D MNIST tutorial network.
``to_dict()`` and ``from_dict()`` round-trip through JSON and reject unknown
keys by name. ``LIMITS`` holds the one allowed range of every numeric knob,
read by the Train form, ``field_problems()`` and the model registry alike.

This module knows no dataset or architecture: checks that need the registries
(is the dataset known, do its volumes fit the preset) live in
``engine.validation``, which owns both, so nothing here imports them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError, Problem

OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("constant", "exponential", "cosine", "plateau")
LOSSES = ("crossentropy", "focal")
CLASS_WEIGHTS = ("none", "balanced")
MONITORS = ("val_loss", "val_accuracy", "val_auc")
# "zscore_fg": a per-volume z-score whose mean and spread come from the foreground voxels only
# (engine.datasets.preprocess.foreground_mask), as for MRI, whose air background carries no signal.
NORMALIZATIONS = ("none", "minmax", "zscore", "zscore_fg")
AUGMENTATIONS = ("flip", "rotate90", "shift", "intensity", "rotate", "scale", "noise", "gamma", "blur")
# The augmentations that each have their own probability and strength: name -> (probability field,
# strength field) of TrainingConfig. flip, rotate90, shift and intensity apply to every training volume.
AUGMENT_KNOBS: dict[str, tuple[str, str]] = {
    "rotate": ("rotate_probability", "rotate_degrees"),
    "scale": ("scale_probability", "scale_range"),
    "noise": ("noise_probability", "noise_std"),
    "gamma": ("gamma_probability", "gamma_range"),
    "blur": ("blur_probability", "blur_sigma"),
}
PADDINGS = ("valid", "same")
INITIALIZERS = ("glorot_uniform", "he_uniform", "he_normal", "glorot_normal", "lecun_normal")
# Numeric precision of training (Keras dtype policies) and XLA compilation; "auto" is resolved by the worker
# for the machine it runs on (engine/machine/execution.py says how and records why).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
XLA_MODES = ("auto", "on", "off")
# What a run learns: "none" is supervised classification of the dataset's labels; "rotation" is
# self-supervised pretraining (labels unused): the network predicts which of four rotations was applied
# to each volume, and later runs start from its weights (engine/training/pretrain.py, docs/transfer.md).
PRETEXTS = ("none", "rotation")


@dataclass
class DataConfig:
    # Name of a built-in or imported dataset (`python -m engine datasets` lists them).
    dataset: str = "digits3d"
    # Generator / reader knobs of that dataset (e.g. {"num_samples": 400} for
    # phantom_lesions); each dataset validates its own and fills in its defaults.
    options: dict[str, Any] = field(default_factory=dict)
    # Fractions of samples held out for validation and test. Splits are
    # stratified by class and group-aware when the dataset has groups.
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # Per-volume intensity normalisation applied before training.
    normalization: str = "none"
    # k-fold cross-validation: None trains on one validation split (val_fraction). With
    # folds = k >= 2 the test split (test_fraction) is held out once, the rest is cut into
    # k stratified, group-aware folds, and launching the config queues k runs (one group),
    # run i validating on fold i; val_fraction is then unused.
    folds: int | None = None
    # The fold this run validates on (0..folds-1); set by launch for each run of a CV group.
    fold: int | None = None
    # Two-class datasets: the class that sensitivity, ROC / PR and the decision threshold are
    # about (e.g. "lesion"). None takes the dataset's positive class; the worker records the
    # class it used here (engine/positive_class.py).
    positive_class: str | None = None
    # Whether a dataset's own split (an import's split column, a file's test set) is kept as given. False
    # re-splits every sample stratified by class (and group-aware), at val_fraction / test_fraction: the
    # remedy of a predefined split that holds one class only (engine/remedies).
    predefined_split: bool = True


@dataclass
class ModelConfig:
    # Architecture preset (`python -m engine archs` lists them).
    architecture: str = "tutorial3d"
    # Multiplies every layer's filter / unit count; 1.0 is the reference model.
    width_multiplier: float = 1.0
    # None keeps the preset's reference value for each of these knobs.
    dropout_rate: float | None = None
    batchnorm: bool | None = None
    # Keras' default momentum; lower values adapt the moving statistics faster.
    batchnorm_momentum: float = 0.99
    l2: float | None = None
    kernel_initializer: str | None = None
    # Convolution padding: "valid" (the references) shrinks each edge by 2 per
    # convolution; "same" keeps it, so deep presets fit small volumes (32^3).
    padding: str | None = None


# The ModelConfig knobs whose None means "the preset's reference value" (tables show that value,
# marked "(preset)": engine.compare.effective_config).
PRESET_KNOBS = ("dropout_rate", "batchnorm", "l2", "kernel_initializer", "padding")


@dataclass
class TrainingConfig:
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    # SGD only.
    momentum: float = 0.9
    nesterov: bool = False
    # AdamW only (decoupled weight decay).
    weight_decay: float = 1e-4
    # Learning-rate schedule. "exponential" multiplies the rate by decay_rate
    # every epoch (staircase); "cosine" decays to 0 over all epochs;
    # "plateau" multiplies it by plateau_factor after plateau_patience epochs
    # without improvement of the monitored metric.
    schedule: str = "constant"
    decay_rate: float = 0.96
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    loss: str = "crossentropy"
    # Focal loss focusing parameter (0 is plain cross-entropy).
    focal_gamma: float = 2.0
    # "balanced" weights each class by n_samples / (n_classes * n_in_class).
    class_weight: str = "none"
    # Random augmentation of training batches only (never validation or test).
    augment: bool = False
    augmentations: list[str] = field(default_factory=lambda: list(AUGMENTATIONS))
    # Each of these augmentations applies to a training volume with its own probability and strength
    # (engine/training/augment.py; docs/augmentation.md). Seeded from the run seed like the others.
    # rotate: a rotation by any angle up to rotate_degrees about each of the three axes (trilinear).
    rotate_probability: float = 0.5
    rotate_degrees: float = 10.0
    # scale: a zoom by a factor drawn from [1 - scale_range, 1 + scale_range] (one affine with rotate).
    scale_probability: float = 0.5
    scale_range: float = 0.1
    # noise: Gaussian noise with a standard deviation of noise_std/2..noise_std times the volume's own.
    noise_probability: float = 0.3
    noise_std: float = 0.1
    # gamma: intensities mapped through x**g on the volume's own min-max range, g in [1/(1+r), 1+r].
    gamma_probability: float = 0.3
    gamma_range: float = 0.3
    # blur: a Gaussian blur with a sigma of blur_sigma/2..blur_sigma voxels.
    blur_probability: float = 0.2
    blur_sigma: float = 1.0
    # Metric used for early stopping, the best checkpoint and "best" in reports.
    monitor: str = "val_loss"
    early_stopping: bool = False
    patience: int = 5
    # Seeds weights, shuffling, augmentation and the split; on CPU the same
    # config and seed give identical numbers (op determinism is enabled).
    seed: int = 0
    # Grad-CAM maps computed for at most this many test samples after training.
    max_saliency_samples: int = 200
    # Keras dtype policy: "auto" picks mixed_bfloat16 on a CPU with bfloat16 instructions (for a model
    # of at least 1 GFLOP per sample),
    # mixed_float16 on a GPU with tensor cores, float32 otherwise (the choice and why are recorded).
    precision: str = "auto"
    # XLA compilation (jit_compile): "auto" turns it on only where the benchmark measured it faster.
    xla: str = "auto"
    # Transfer learning (docs/transfer.md). Start from another run's weights ("run:12", or "12") or from a
    # .keras / .h5 weights file (a path): layers that match by name and shape are loaded, the output layer
    # is rebuilt for this run's classes, and the mismatches are listed in the run's events. None: from scratch.
    init_from: str | None = None
    # Freeze the first K blocks of the architecture (their weights, BatchNorm statistics included, do not
    # change); 0 trains every layer. Needs init_from (a frozen random block would teach nothing).
    freeze_blocks: int = 0
    # The backbone's (every layer but the output layer's) learning rate as a fraction of learning_rate;
    # 1.0 trains all layers at the same rate. Below 1 keeps pretrained features while the new head learns.
    backbone_lr_scale: float = 1.0
    # "none" (classify the labels) or "rotation" (self-supervised pretraining, labels unused).
    pretext: str = "none"


@dataclass
class RunConfig:
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        """Build a config from a (possibly partial) dict; unknown keys are an error."""
        if not isinstance(raw, dict):
            raise ConfigError([f"A run configuration must be a JSON object, not {type(raw).__name__}."])
        problems: list[Problem] = []
        sections = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig}
        unknown = sorted(set(raw) - {"name", *sections})
        if unknown:
            problems.append(Problem(
                "",
                f"Unknown configuration key(s) {', '.join(unknown)}; valid top-level keys are name, data, model, training.",
            ))
        kwargs: dict[str, Any] = {}
        if "name" in raw:
            kwargs["name"] = "" if raw["name"] is None else str(raw["name"])
        for key, section_cls in sections.items():
            section_raw = raw.get(key) or {}
            if not isinstance(section_raw, dict):
                problems.append(Problem(key, f"'{key}' must be an object of fields, not {section_raw!r}."))
                continue
            names = {f.name for f in dataclasses.fields(section_cls)}
            bad = sorted(set(section_raw) - names)
            if bad:
                problems.append(Problem(
                    key,
                    f"Unknown field(s) {', '.join(key + '.' + b for b in bad)}; "
                    f"valid fields of '{key}' are {', '.join(sorted(names))}.",
                ))
            kwargs[key] = section_cls(**{k: v for k, v in section_raw.items() if k in names})
        if problems:
            raise ConfigError(problems)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError([f"The configuration is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})."]) from e
        return cls.from_dict(raw)

    def copy(self) -> "RunConfig":
        return RunConfig.from_dict(json.loads(self.to_json()))

    # ----------------------------------------------------------- validation
    def field_problems(self) -> list[Problem]:
        """Every field outside its type, range or choices (no registry needed); empty when all are fine.

        ``engine.validation.validate`` adds the checks against the dataset and
        architecture registries; launch paths call that, not this.
        """
        return _field_problems(self)


# ------------------------------------------------------------------ limits
# The most folds a cross-validation may have (each fold is a whole training run).
MAX_FOLDS = 20


@dataclass(frozen=True)
class Limit:
    """The allowed range of one numeric knob, the single source for forms, configs and registries."""

    low: float | None
    high: float | None
    low_open: bool = False  # the low end itself is not allowed
    high_open: bool = False
    integer: bool = False
    optional: bool = False  # None allowed (the preset's reference value)

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.integer:
            if not (isinstance(value, int) and not isinstance(value, bool)):
                return False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return not (too_low or too_high)

    def describe(self) -> str:
        """"a number in (0, 8]" / "a whole number in [1, 10000]"."""
        left, right = ("(" if self.low_open else "["), (")" if self.high_open else "]")
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'a whole number' if self.integer else 'a number'} in {left}{low}, {high}{right}"

    def problem(self, field_name: str, value: Any) -> Problem | None:
        if self.allows(value):
            return None
        return Problem(field_name, f"{field_name} is {value!r}; it must be {self.describe()}.")


LIMITS: dict[str, Limit] = {
    "data.val_fraction": Limit(0, 1, low_open=True, high_open=True),
    "data.test_fraction": Limit(0, 1, low_open=True, high_open=True),
    "data.folds": Limit(2, MAX_FOLDS, integer=True, optional=True),
    "data.fold": Limit(0, MAX_FOLDS - 1, integer=True, optional=True),
    "model.width_multiplier": Limit(0, 8, low_open=True),
    "model.dropout_rate": Limit(0, 1, high_open=True, optional=True),
    "model.batchnorm_momentum": Limit(0, 1, high_open=True),
    "model.l2": Limit(0, 1, optional=True),
    "training.epochs": Limit(1, 10000, integer=True),
    "training.batch_size": Limit(1, 4096, integer=True),
    "training.learning_rate": Limit(0, 1, low_open=True),
    "training.momentum": Limit(0, 1, high_open=True),
    "training.weight_decay": Limit(0, 1),
    "training.decay_rate": Limit(0, 1, low_open=True),
    "training.plateau_factor": Limit(0, 1, low_open=True, high_open=True),
    "training.plateau_patience": Limit(1, 1000, integer=True),
    "training.focal_gamma": Limit(0, 10),
    "training.patience": Limit(1, 10000, integer=True),
    "training.seed": Limit(0, 2**31 - 1, integer=True),
    "training.max_saliency_samples": Limit(0, 100000, integer=True),
    "training.rotate_probability": Limit(0, 1),
    "training.rotate_degrees": Limit(0, 180),
    "training.scale_probability": Limit(0, 1),
    "training.scale_range": Limit(0, 0.5),
    "training.noise_probability": Limit(0, 1),
    "training.noise_std": Limit(0, 1),
    "training.gamma_probability": Limit(0, 1),
    "training.gamma_range": Limit(0, 2),
    "training.blur_probability": Limit(0, 1),
    "training.blur_sigma": Limit(0, 3),
    "training.freeze_blocks": Limit(0, 100, integer=True),
    "training.backbone_lr_scale": Limit(0, 1, low_open=True),
}
# The validation and test fractions together must leave at least this share for training.
MIN_TRAIN_FRACTION = 0.1

CHOICES: dict[str, tuple[str, ...]] = {
    "data.normalization": NORMALIZATIONS,
    "model.kernel_initializer": INITIALIZERS,
    "model.padding": PADDINGS,
    "training.optimizer": OPTIMIZERS,
    "training.schedule": SCHEDULES,
    "training.loss": LOSSES,
    "training.class_weight": CLASS_WEIGHTS,
    "training.monitor": MONITORS,
    "training.precision": PRECISIONS,
    "training.xla": XLA_MODES,
    "training.pretext": PRETEXTS,
}
# Choices that may also be None (the preset's reference value).
_OPTIONAL_CHOICES = ("model.kernel_initializer", "model.padding")
FLAGS = ("training.nesterov", "training.augment", "training.early_stopping", "data.predefined_split")
MAX_NAME_LENGTH = 200


def _is_control(char: str) -> bool:
    """Control (Cc: newline, tab, ESC ...) and format (Cf: zero-width, bidi overrides) characters.

    A name is printed in terminal tables (``python -m engine runs``), where an escape
    sequence or a line break garbles the output, and shown on pages, where a bidi override
    makes it read differently from what is stored.
    """
    return unicodedata.category(char) in ("Cc", "Cf")


def _value(config: RunConfig, field_name: str) -> Any:
    section, name = field_name.split(".")
    return getattr(getattr(config, section), name)


def _field_problems(config: RunConfig) -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(config.name, str) or len(config.name) > MAX_NAME_LENGTH:
        problems.append(Problem("name", f"name must be text of at most {MAX_NAME_LENGTH} characters."))
    elif any(_is_control(char) for char in config.name):
        problems.append(Problem(
            "name",
            "name holds a control character (a line break, tab, escape sequence or invisible formatting "
            "character); use one line of visible text.",
        ))
    if not isinstance(config.data.dataset, str) or not config.data.dataset:
        problems.append(Problem("data.dataset", f"data.dataset is {config.data.dataset!r}; name a dataset."))
    if not isinstance(config.data.options, dict):
        problems.append(
            Problem("data.options", f"data.options must be an object of dataset options, not {config.data.options!r}.")
        )
    positive = config.data.positive_class
    if positive is not None and (not isinstance(positive, str) or not positive or len(positive) > MAX_NAME_LENGTH
                                 or any(_is_control(char) for char in positive)):
        problems.append(Problem(
            "data.positive_class", f"data.positive_class is {positive!r}; name one of the dataset's two classes."
        ))
    if not isinstance(config.model.architecture, str) or not config.model.architecture:
        problems.append(
            Problem("model.architecture", f"model.architecture is {config.model.architecture!r}; name an architecture.")
        )
    for field_name, limit in LIMITS.items():
        problem = limit.problem(field_name, _value(config, field_name))
        if problem:
            problems.append(problem)
    val_fraction, test_fraction = config.data.val_fraction, config.data.test_fraction
    if (
        LIMITS["data.val_fraction"].allows(val_fraction)
        and LIMITS["data.test_fraction"].allows(test_fraction)
        and val_fraction + test_fraction > 1 - MIN_TRAIN_FRACTION
    ):
        problems.append(Problem(
            "data.test_fraction",
            f"data.val_fraction + data.test_fraction is {val_fraction + test_fraction:g}; together they must "
            f"leave at least {MIN_TRAIN_FRACTION:.0%} of the samples for training (at most {1 - MIN_TRAIN_FRACTION:g}).",
        ))
    folds, fold = config.data.folds, config.data.fold
    if fold is not None and LIMITS["data.fold"].allows(fold):
        if folds is None:
            problems.append(Problem("data.fold", f"data.fold is {fold}; set data.folds (k >= 2) too, or leave data.fold empty."))
        elif LIMITS["data.folds"].allows(folds) and fold >= folds:
            problems.append(Problem("data.fold", f"data.fold is {fold}; with {folds} folds it must be 0..{folds - 1}."))
    for field_name, choices in CHOICES.items():
        value = _value(config, field_name)
        if value is None and field_name in _OPTIONAL_CHOICES:
            continue
        if value not in choices:
            problems.append(Problem(field_name, f"{field_name} is {value!r}; choose one of {', '.join(choices)}."))
    batchnorm = config.model.batchnorm
    if batchnorm is not None and not isinstance(batchnorm, bool):
        problems.append(Problem(
            "model.batchnorm", f"model.batchnorm is {batchnorm!r}; it must be true, false or null (the preset's default)."
        ))
    for field_name in FLAGS:
        value = _value(config, field_name)
        if not isinstance(value, bool):
            problems.append(Problem(field_name, f"{field_name} is {value!r}; it must be true or false."))
    problems.extend(_transfer_problems(config.training))
    augmentations = config.training.augmentations
    if not isinstance(augmentations, list) or any(a not in AUGMENTATIONS for a in augmentations):
        problems.append(Problem(
            "training.augmentations",
            f"training.augmentations is {augmentations!r}; use a list drawn from {', '.join(AUGMENTATIONS)}.",
        ))
    return problems


# The longest init_from accepted (a run reference or a file path).
MAX_INIT_FROM_LENGTH = 1000


def _transfer_problems(training: TrainingConfig) -> list[Problem]:
    """The transfer-learning fields that contradict each other (the source itself is checked at launch)."""
    problems: list[Problem] = []
    init_from = training.init_from
    if init_from is not None and (not isinstance(init_from, str) or not init_from.strip()
                                  or len(init_from) > MAX_INIT_FROM_LENGTH
                                  or any(_is_control(char) for char in init_from)):
        problems.append(Problem(
            "training.init_from",
            f"training.init_from is {init_from!r}; give a run (e.g. run:12) or the path of a .keras / .h5 "
            "weights file, or leave it empty to train from scratch.",
        ))
        return problems
    freeze = training.freeze_blocks
    if init_from is None and isinstance(freeze, int) and not isinstance(freeze, bool) and freeze > 0:
        problems.append(Problem(
            "training.freeze_blocks",
            f"training.freeze_blocks is {freeze} but the run starts from random weights; set training.init_from "
            "to a pretrained run or file, or freeze 0 blocks.",
        ))
    if training.pretext == "rotation" and training.augment and isinstance(training.augmentations, list):
        turning = [name for name in training.augmentations if name in ("flip", "rotate90")]
        if turning:
            problems.append(Problem(
                "training.augmentations",
                f"Rotation pretraining predicts how a volume was turned, and the {' and '.join(turning)} "
                "augmentation turns volumes too; remove it from training.augmentations or turn augmentation off.",
            ))
    scale = training.backbone_lr_scale
    if init_from is None and LIMITS["training.backbone_lr_scale"].allows(scale) and scale != 1:
        problems.append(Problem(
            "training.backbone_lr_scale",
            f"training.backbone_lr_scale is {scale:g} but the run starts from random weights; set "
            "training.init_from, or leave the scale at 1.",
        ))
    return problems
