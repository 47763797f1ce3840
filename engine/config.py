"""Run configuration: everything that defines a run, saved whole with it.

``RunConfig`` has three sections (data, model, training). Defaults are the
settings of the demo run: digits3d with the 3D MNIST tutorial network.
``validate()`` collects every problem into one ``ConfigError``; ``to_dict()``
and ``from_dict()`` round-trip through JSON and reject unknown keys by name.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("constant", "exponential", "cosine", "plateau")
LOSSES = ("crossentropy", "focal")
CLASS_WEIGHTS = ("none", "balanced")
MONITORS = ("val_loss", "val_accuracy", "val_auc")
NORMALIZATIONS = ("none", "minmax", "zscore")
AUGMENTATIONS = ("flip", "rotate90", "shift", "intensity")
PADDINGS = ("valid", "same")
INITIALIZERS = ("glorot_uniform", "he_uniform", "he_normal", "glorot_normal", "lecun_normal")


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
    # Metric used for early stopping, the best checkpoint and "best" in reports.
    monitor: str = "val_loss"
    early_stopping: bool = False
    patience: int = 5
    # Seeds weights, shuffling, augmentation and the split; on CPU the same
    # config and seed give identical numbers (op determinism is enabled).
    seed: int = 0
    # Grad-CAM maps computed for at most this many test samples after training.
    max_saliency_samples: int = 200


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
        problems: list[str] = []
        sections = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig}
        unknown = sorted(set(raw) - {"name", *sections})
        if unknown:
            problems.append(
                f"Unknown configuration key(s) {', '.join(unknown)}; valid top-level keys are name, data, model, training."
            )
        kwargs: dict[str, Any] = {}
        if "name" in raw:
            kwargs["name"] = "" if raw["name"] is None else str(raw["name"])
        for key, section_cls in sections.items():
            section_raw = raw.get(key) or {}
            if not isinstance(section_raw, dict):
                problems.append(f"'{key}' must be an object of fields, not {section_raw!r}.")
                continue
            names = {f.name for f in dataclasses.fields(section_cls)}
            bad = sorted(set(section_raw) - names)
            if bad:
                problems.append(
                    f"Unknown field(s) {', '.join(key + '.' + b for b in bad)}; "
                    f"valid fields of '{key}' are {', '.join(sorted(names))}."
                )
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
    def validate(self) -> "RunConfig":
        """Raise one ``ConfigError`` naming every invalid field; return self when valid."""
        problems = _problems(self)
        if problems:
            raise ConfigError(problems)
        return self


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(problems, name, value, low, high, *, low_open=False, high_open=False, integer=False):
    """Append a sentence to ``problems`` when ``value`` is outside [low, high] (or open ends)."""
    ok = _is_int(value) if integer else _is_number(value)
    if ok:
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        ok = not (too_low or too_high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        kind = "a whole number" if integer else "a number"
        problems.append(f"{name} is {value!r}; it must be {kind} in {left}{low_text}, {high_text}{right}.")


def _check_choice(problems, name, value, choices):
    if value not in choices:
        problems.append(f"{name} is {value!r}; choose one of {', '.join(choices)}.")


def _problems(config: RunConfig) -> list[str]:
    # Imported here: both registries are plain Python (no TensorFlow) but import config types.
    from engine import datasets, models

    problems: list[str] = []
    if not isinstance(config.name, str) or len(config.name) > 200:
        problems.append("name must be text of at most 200 characters.")

    data = config.data
    known_datasets = datasets.dataset_names()
    if data.dataset not in known_datasets:
        problems.append(f"data.dataset is {data.dataset!r}; valid datasets are {', '.join(known_datasets)}.")
    elif not isinstance(data.options, dict):
        problems.append(f"data.options must be an object of dataset knobs, not {data.options!r}.")
    else:
        problems.extend(datasets.validate_options(data.dataset, data.options))
    _check_range(problems, "data.val_fraction", data.val_fraction, 0, 1, low_open=True, high_open=True)
    _check_range(problems, "data.test_fraction", data.test_fraction, 0, 1, low_open=True, high_open=True)
    if _is_number(data.val_fraction) and _is_number(data.test_fraction) and data.val_fraction + data.test_fraction > 0.9:
        problems.append(
            f"data.val_fraction + data.test_fraction is {data.val_fraction + data.test_fraction:g}; "
            "together they must leave at least 10% of the samples for training (at most 0.9)."
        )
    _check_choice(problems, "data.normalization", data.normalization, NORMALIZATIONS)

    model = config.model
    known_archs = models.architecture_names()
    if model.architecture not in known_archs:
        problems.append(f"model.architecture is {model.architecture!r}; valid architectures are {', '.join(known_archs)}.")
    _check_range(problems, "model.width_multiplier", model.width_multiplier, 0, 8, low_open=True)
    if model.dropout_rate is not None:
        _check_range(problems, "model.dropout_rate", model.dropout_rate, 0, 1, high_open=True)
    if model.batchnorm is not None and not isinstance(model.batchnorm, bool):
        problems.append(f"model.batchnorm is {model.batchnorm!r}; it must be true, false or null (the preset's default).")
    _check_range(problems, "model.batchnorm_momentum", model.batchnorm_momentum, 0, 1, high_open=True)
    if model.l2 is not None:
        _check_range(problems, "model.l2", model.l2, 0, 1)
    if model.kernel_initializer is not None:
        _check_choice(problems, "model.kernel_initializer", model.kernel_initializer, INITIALIZERS)
    if model.padding is not None:
        _check_choice(problems, "model.padding", model.padding, PADDINGS)
    if not problems:
        # Everything named is known: check that the preset can take this dataset's volumes.
        info = datasets.dataset_info(data.dataset, data.options)
        try:
            models.check_input(model.architecture, tuple(info["volume_shape"]), info["num_classes"], model)
        except ConfigError as e:
            problems.extend(e.problems)

    t = config.training
    _check_range(problems, "training.epochs", t.epochs, 1, 10000, integer=True)
    _check_range(problems, "training.batch_size", t.batch_size, 1, 4096, integer=True)
    _check_choice(problems, "training.optimizer", t.optimizer, OPTIMIZERS)
    _check_range(problems, "training.learning_rate", t.learning_rate, 0, 1, low_open=True)
    _check_range(problems, "training.momentum", t.momentum, 0, 1, high_open=True)
    if not isinstance(t.nesterov, bool):
        problems.append(f"training.nesterov is {t.nesterov!r}; it must be true or false.")
    _check_range(problems, "training.weight_decay", t.weight_decay, 0, 1)
    _check_choice(problems, "training.schedule", t.schedule, SCHEDULES)
    _check_range(problems, "training.decay_rate", t.decay_rate, 0, 1, low_open=True)
    _check_range(problems, "training.plateau_factor", t.plateau_factor, 0, 1, low_open=True, high_open=True)
    _check_range(problems, "training.plateau_patience", t.plateau_patience, 1, 1000, integer=True)
    _check_choice(problems, "training.loss", t.loss, LOSSES)
    _check_range(problems, "training.focal_gamma", t.focal_gamma, 0, 10)
    _check_choice(problems, "training.class_weight", t.class_weight, CLASS_WEIGHTS)
    if not isinstance(t.augment, bool):
        problems.append(f"training.augment is {t.augment!r}; it must be true or false.")
    if not isinstance(t.augmentations, list) or any(a not in AUGMENTATIONS for a in t.augmentations):
        problems.append(f"training.augmentations is {t.augmentations!r}; use a list drawn from {', '.join(AUGMENTATIONS)}.")
    _check_choice(problems, "training.monitor", t.monitor, MONITORS)
    if not isinstance(t.early_stopping, bool):
        problems.append(f"training.early_stopping is {t.early_stopping!r}; it must be true or false.")
    _check_range(problems, "training.patience", t.patience, 1, 10000, integer=True)
    _check_range(problems, "training.seed", t.seed, 0, 2**31 - 1, integer=True)
    _check_range(problems, "training.max_saliency_samples", t.max_saliency_samples, 0, 100000, integer=True)
    return problems
