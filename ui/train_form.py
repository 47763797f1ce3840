"""The Train page's form: one helper per section, each returning plain config values.

Widgets are created without ``value=``; their defaults go into session state
first (``_default``). Every widget has a ``train_`` key that tests can drive;
the options of a dataset and the knobs of an architecture carry its name in the key
(``train_option_shapes3d_size``, ``train_dropout_rate_vgg3d``), so each keeps
its own defaults and values.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine import config as cfg
from engine import datasets
from engine.errors import Problem
from ui import tables
from ui.text import markdown_text

# Learning rates offered on the log-scale slider (within LIMITS["training.learning_rate"]).
LEARNING_RATES = tuple(m * 10.0**e for e in range(-6, 0) for m in (1, 2, 5)) + (1.0,)
LIMITS = cfg.LIMITS
# Model knobs whose None means "the preset's reference value".
PRESET_KNOBS = cfg.PRESET_KNOBS
DATA_DEFAULTS = cfg.DataConfig()
MODEL_DEFAULTS = cfg.ModelConfig()
TRAINING_DEFAULTS = cfg.TrainingConfig()


def _bounds(field_name: str) -> dict[str, Any]:
    """min_value / max_value of a number input from the knob's one limit (an open end is refused by validation)."""
    limit = LIMITS[field_name]
    number = int if limit.integer else float
    return {
        "min_value": None if limit.low is None else number(limit.low),
        "max_value": None if limit.high is None else number(limit.high),
    }


def _default(key: str, value: Any) -> str:
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def run_section() -> dict[str, Any]:
    name = st.text_input(
        "Run name", key=_default("train_name", ""), placeholder="(automatic: run-ID)",
        help="Shown in the Runs table; at most 200 characters.",
    )
    seed = st.number_input(
        "Run seed", key=_default("train_seed", TRAINING_DEFAULTS.seed), step=1,
        **_bounds("training.seed"),
        help="Seeds the weights, shuffling, augmentation and the split (the dataset's generator has its own seed).",
    )
    return {"name": name, "seed": int(seed)}


def _catalog_choice(label: str, catalog: list[dict[str, Any]], key: str, preferred: str) -> tuple[str, dict[str, Any]]:
    """A picker over an engine catalog (datasets or architectures) with the chosen entry's description below.

    Starts on ``preferred`` when the catalog has it; returns the chosen name and its entry.
    """
    by_name = {entry["name"]: entry for entry in catalog}
    names = list(by_name)
    name = st.selectbox(
        label, names, key=_default(key, preferred if preferred in by_name else names[0]),
        format_func=lambda n: f"{by_name[n]['title']} ({n})",
    )
    st.caption(markdown_text(by_name[name].get("description", "")))
    return name, by_name[name]


def dataset_section(catalog: list[dict[str, Any]]) -> dict[str, Any]:
    """Dataset, its options, the split and normalisation -> the ``data`` section."""
    name, entry = _catalog_choice("Dataset", catalog, "train_dataset", DATA_DEFAULTS.dataset)
    options = dataset_options(name, entry)
    positive_class = _positive_class_widget(name, entry)
    val_column, test_column, norm_column = st.columns(3)
    # A dataset's own validation / test split (3D MNIST, MedMNIST, an imported split column) is used as given:
    # its size is shown instead of a fraction, and the config records the share it is.
    own = datasets.predefined_fractions(entry)
    fractions = {}
    for column, split, label in ((val_column, "val", "Validation"), (test_column, "test", "Test")):
        if split in own:
            column.text_input(f"{label} split", value=f"{entry['splits'][split]} samples (the dataset's own)",
                              disabled=True, key=f"train_{split}_split_{name}",
                              help=f"{name} brings its own {label.lower()} split; it is used as given.")
            fractions[split] = own[split]
        else:
            fractions[split] = column.number_input(
                f"{label} fraction", key=_default(f"train_{split}_fraction", getattr(DATA_DEFAULTS, f"{split}_fraction")),
                **_bounds(f"data.{split}_fraction"), step=0.05, format="%.2f",
            )
    val_fraction, test_fraction = fractions["val"], fractions["test"]
    # The default follows the dataset (keyed by it): none when the import scaled it already, so never twice.
    default_normalization, why = datasets.default_normalization(entry)
    normalization = norm_column.selectbox(
        "Normalisation", cfg.NORMALIZATIONS, key=_default(f"train_normalization_{name}", default_normalization),
        help=f"Per-volume normalisation before training; {default_normalization} by default here: {why}.",
    )
    folds = st.number_input(
        "Cross-validation folds", key=_default("train_folds", 1), min_value=1, max_value=cfg.MAX_FOLDS,
        help="k >= 2 queues one run per fold as a group (the test split held out once; the validation "
        "fraction is then unused); 1 trains once on the validation split.",
    )
    return {
        "dataset": name,
        "options": options,
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
        "normalization": normalization,
        "folds": int(folds) if folds > 1 else None,
        "positive_class": positive_class,
    }


def _positive_class_widget(dataset: str, entry: dict[str, Any]) -> str | None:
    """Two-class datasets: the run's positive class, starting on the dataset's; None for more classes."""
    names = [str(name) for name in entry.get("class_names") or []]
    if len(names) != 2:
        return None
    default = entry.get("positive_class") if entry.get("positive_class") in names else names[1]
    key = f"train_positive_class_{dataset}"
    if st.session_state.get(key) not in names:
        st.session_state[key] = default
    return st.selectbox(
        "Positive class", names, key=key,
        help=f"The class sensitivity, ROC / PR and the decision threshold are about; {markdown_text(default)} is "
        "the dataset's.",
    )


def dataset_options(dataset: str, entry: dict[str, Any], prefix: str = "train") -> dict[str, Any]:
    """The dataset's options as widgets (up to three a row) -> ``data.options``. The Train and
    Sweeps pages use these same widgets; ``prefix`` starts their keys (``sweeps_option_shapes3d_size``)."""
    options: dict[str, Any] = {}
    specs = entry.get("options") or {}
    if specs:
        columns = st.columns(min(3, len(specs)))
        for index, (option, spec) in enumerate(specs.items()):
            with columns[index % len(columns)]:
                options[option] = _option_widget(dataset, option, spec, prefix)
    return options


def _option_widget(dataset: str, option: str, spec: dict[str, Any], prefix: str = "train") -> Any:
    """One dataset option: a choice, a whole number, a number or a flag (bounds from the engine).

    Keyed by dataset too: two datasets' options of the same name are different widgets.
    """
    key = f"{prefix}_option_{dataset}_{option}"
    default = spec.get("default")
    label = spec.get("label") or option.replace("_", " ").capitalize()
    help_text = spec.get("help")
    if spec.get("choices"):
        return st.selectbox(label, spec["choices"], key=_default(key, default), help=help_text)
    if isinstance(default, bool):
        return st.checkbox(label, key=_default(key, default), help=help_text)
    integer = bool(spec.get("integer")) or isinstance(default, int)
    number = int if integer else float
    value = st.number_input(
        label, key=_default(key, default), help=help_text,
        step=1 if integer else None, format=None if integer else "%g",
        min_value=None if spec.get("min") is None else number(spec["min"]),
        max_value=None if spec.get("max") is None else number(spec["max"]),
        placeholder="(all)" if default is None else None,
    )
    return None if value is None else number(value)


def model_section(catalog: list[dict[str, Any]]) -> dict[str, Any]:
    """Architecture and its knobs -> the ``model`` section (None where the preset's value is kept)."""
    arch, entry = _catalog_choice("Architecture", catalog, "train_architecture", MODEL_DEFAULTS.architecture)
    preset = entry["defaults"]
    width_column, dropout_column, init_column = st.columns(3)
    width = width_column.number_input(
        "Width multiplier", key=_default("train_width_multiplier", MODEL_DEFAULTS.width_multiplier),
        **_bounds("model.width_multiplier"), step=0.25, format="%g", help="Scales every layer's filter and unit count.",
    )
    dropout = dropout_column.number_input(
        "Dropout rate", key=_default(f"train_dropout_rate_{arch}", float(preset["dropout_rate"])),
        **_bounds("model.dropout_rate"), step=0.05, format="%.2f", help=f"The architecture uses {preset['dropout_rate']}.",
    )
    initializers = list(cfg.INITIALIZERS)
    initializer = init_column.selectbox(
        "Kernel initializer", initializers, key=_default(f"train_kernel_initializer_{arch}", preset["kernel_initializer"]),
        help=f"The architecture uses {preset['kernel_initializer']}.",
    )
    bn_column, momentum_column, l2_column = st.columns(3)
    batchnorm = bn_column.toggle(
        "BatchNorm", key=_default(f"train_batchnorm_{arch}", bool(preset["batchnorm"])),
        help=f"The architecture {'uses' if preset['batchnorm'] else 'does not use'} BatchNorm.",
    )
    momentum = momentum_column.number_input(
        "BatchNorm momentum", key=_default("train_batchnorm_momentum", MODEL_DEFAULTS.batchnorm_momentum),
        **_bounds("model.batchnorm_momentum"), step=0.01, format="%.3f", disabled=not batchnorm,
    )
    l2 = l2_column.number_input(
        "L2 weight penalty", key=_default(f"train_l2_{arch}", float(preset["l2"])),
        **_bounds("model.l2"), step=1e-4, format="%.1e", help=f"The architecture uses {preset['l2']:g}.",
    )
    padding_column, _, _ = st.columns(3)
    paddings = entry["paddings"]
    if len(paddings) > 1:
        padding = padding_column.selectbox(
            "Convolution padding", paddings, key=_default(f"train_padding_{arch}", preset["padding"]),
            help=f"The architecture uses {preset['padding']}. 'same' keeps each convolution's output the size of its "
            "input, so deep architectures fit small volumes.",
        )
    else:  # the preset's builder has one fixed padding: nothing to choose
        padding = paddings[0]
        padding_column.caption(f"Convolution padding: always '{padding}' in this architecture.")
    chosen = {"dropout_rate": float(dropout), "batchnorm": bool(batchnorm), "l2": float(l2),
              "kernel_initializer": initializer, "padding": padding}
    model: dict[str, Any] = {
        "architecture": arch,
        "width_multiplier": float(width),
        "batchnorm_momentum": float(momentum),
    }
    # Unchanged knobs stay None: the preset's reference value (and, for L2, its scope) applies.
    for knob in PRESET_KNOBS:
        model[knob] = None if chosen[knob] == preset[knob] else chosen[knob]
    return model


def training_section() -> dict[str, Any]:
    """Optimisation knobs -> the ``training`` section (hidden knobs keep their defaults)."""
    t = TRAINING_DEFAULTS
    values: dict[str, Any] = {}
    epochs_column, batch_column, optimizer_column = st.columns(3)
    values["epochs"] = int(epochs_column.number_input(
        "Epochs", key=_default("train_epochs", t.epochs), step=1, **_bounds("training.epochs")
    ))
    values["batch_size"] = int(batch_column.number_input(
        "Batch size", key=_default("train_batch_size", t.batch_size), step=1, **_bounds("training.batch_size")
    ))
    values["optimizer"] = optimizer_column.selectbox("Optimizer", cfg.OPTIMIZERS, key=_default("train_optimizer", t.optimizer))
    values["learning_rate"] = st.select_slider(
        "Learning rate (log scale)", LEARNING_RATES, key=_default("train_learning_rate", t.learning_rate),
        format_func=lambda v: f"{v:.0e}",
    )
    if values["optimizer"] == "sgd":
        momentum_column, nesterov_column = st.columns(2)
        values["momentum"] = float(momentum_column.number_input(
            "SGD momentum", key=_default("train_momentum", t.momentum), **_bounds("training.momentum"), step=0.05
        ))
        values["nesterov"] = nesterov_column.toggle("Nesterov", key=_default("train_nesterov", t.nesterov))
    if values["optimizer"] == "adamw":
        values["weight_decay"] = float(st.number_input(
            "Weight decay", key=_default("train_weight_decay", t.weight_decay), **_bounds("training.weight_decay"),
            step=1e-4, format="%.1e",
        ))
    schedule_column, schedule_knob_column, schedule_knob2_column = st.columns(3)
    values["schedule"] = schedule_column.selectbox(
        "Learning-rate schedule", cfg.SCHEDULES, key=_default("train_schedule", t.schedule)
    )
    if values["schedule"] == "exponential":
        values["decay_rate"] = float(schedule_knob_column.number_input(
            "Decay per epoch", key=_default("train_decay_rate", t.decay_rate), **_bounds("training.decay_rate"),
            step=0.01,
        ))
    if values["schedule"] == "plateau":
        values["plateau_factor"] = float(schedule_knob_column.number_input(
            "Plateau factor", key=_default("train_plateau_factor", t.plateau_factor),
            **_bounds("training.plateau_factor"), step=0.05,
        ))
        values["plateau_patience"] = int(schedule_knob2_column.number_input(
            "Plateau patience (epochs)", key=_default("train_plateau_patience", t.plateau_patience), step=1,
            **_bounds("training.plateau_patience"),
        ))
    loss_column, gamma_column, weight_column = st.columns(3)
    values["loss"] = loss_column.selectbox("Loss", cfg.LOSSES, key=_default("train_loss", t.loss))
    if values["loss"] == "focal":
        values["focal_gamma"] = float(gamma_column.number_input(
            "Focal gamma", key=_default("train_focal_gamma", t.focal_gamma), **_bounds("training.focal_gamma"), step=0.5
        ))
    values["class_weight"] = weight_column.selectbox(
        "Class weights", cfg.CLASS_WEIGHTS, key=_default("train_class_weight", t.class_weight)
    )
    augment_column, augmentations_column = st.columns([1, 2])
    values["augment"] = augment_column.toggle(
        "Augment", key=_default("train_augment", t.augment),
        help="Random augmentation of training batches only (never validation or test).",
    )
    if values["augment"]:
        values["augmentations"] = augmentations_column.multiselect(
            "Augmentations", cfg.AUGMENTATIONS, key=_default("train_augmentations", list(t.augmentations)),
            help="flip, rotate90, shift and intensity apply to every training volume; the others each with "
                 "their own probability and strength, set below.",
        )
        values.update(augment_knobs(values["augmentations"]))
    monitor_column, stopping_column, patience_column = st.columns(3)
    values["monitor"] = monitor_column.selectbox("Monitor", cfg.MONITORS, key=_default("train_monitor", t.monitor))
    values["early_stopping"] = stopping_column.toggle(
        "Early stopping", key=_default("train_early_stopping", t.early_stopping)
    )
    if values["early_stopping"]:
        values["patience"] = int(patience_column.number_input(
            "Patience (epochs)", key=_default("train_patience", t.patience), step=1, **_bounds("training.patience")
        ))
    precision_column, xla_column = st.columns(2)
    values["precision"] = precision_column.selectbox(
        "Precision", cfg.PRECISIONS, key=_default("train_precision", t.precision),
        help="auto: mixed_bfloat16 on a CPU with bfloat16 instructions (for models of 1 GFLOP per sample or more), "
             "mixed_float16 on a GPU with tensor cores, float32 otherwise. The choice and the reason are "
             "recorded with the run.",
    )
    values["xla"] = xla_column.selectbox(
        "XLA compilation", cfg.XLA_MODES, key=_default("train_xla", t.xla),
        help="auto: on only where `python -m engine bench` measured it faster on this kind of device.",
    )
    values["max_saliency_samples"] = int(st.number_input(
        "Grad-CAM maps for at most this many test samples", key=_default("train_max_saliency_samples",
                                                                          t.max_saliency_samples),
        step=50, **_bounds("training.max_saliency_samples"),
    ))
    return values


# The strength of each augmentation with a probability: its label and what the number means.
AUGMENT_STRENGTHS = {
    "rotate": ("Rotate: up to (degrees)", "A rotation by any angle up to this about each of the three axes."),
    "scale": ("Scale: ± fraction", "A zoom by a factor in [1 - this, 1 + this]."),
    "noise": ("Noise: std (× volume's)", "Gaussian noise of this to half this times the volume's own std."),
    "gamma": ("Gamma: range", "Intensities through x^g on the volume's range, g in [1/(1+this), 1+this]."),
    "blur": ("Blur: sigma (voxels)", "A Gaussian blur of this to half this voxels."),
}


def augment_knobs(augmentations: list[str]) -> dict[str, float]:
    """Probability and strength of each chosen augmentation that has them -> their ``training`` fields."""
    t = TRAINING_DEFAULTS
    values: dict[str, float] = {}
    chosen = [name for name in cfg.AUGMENT_KNOBS if name in augmentations]
    for name in chosen:
        probability_field, strength_field = cfg.AUGMENT_KNOBS[name]
        label, help_text = AUGMENT_STRENGTHS[name]
        probability_column, strength_column = st.columns(2)
        values[probability_field] = float(probability_column.number_input(
            f"{name.capitalize()}: probability",
            key=_default(f"train_{probability_field}", getattr(t, probability_field)),
            **_bounds(f"training.{probability_field}"), step=0.1, format="%.2f",
            help=f"The share of training volumes that get {name}.",
        ))
        values[strength_field] = float(strength_column.number_input(
            label, key=_default(f"train_{strength_field}", getattr(t, strength_field)),
            **_bounds(f"training.{strength_field}"), step=1.0 if name == "rotate" else 0.05, format="%g",
            help=help_text,
        ))
    return values


# A metric value longer than this is cut ("16×…") in a third of the preview column at 1280 px.
SHORT_METRIC_CHARS = 5


def dataset_metrics(num_samples: int, volume_shape, num_classes: int) -> None:
    """Samples, volume and classes as metrics; a long volume ("64×128×128") gets a row of its own."""
    shape = tables.format_shape(volume_shape)
    help_text = "Depth × height × width in voxels (and channels, when more than one)."
    if len(shape) <= SHORT_METRIC_CHARS:
        count_column, shape_column, class_column = st.columns(3)
        shape_column.metric("Volume", shape, help=help_text)
    else:
        count_column, class_column = st.columns(2)
        st.metric("Volume", shape, help=help_text)
    count_column.metric("Samples", num_samples)
    class_column.metric("Classes", num_classes)


def section_of(problem: Problem) -> str:
    """Which form section a problem belongs to: run, data, model, training, or other (from its field)."""
    if problem.field in ("name", "training.seed"):
        return "run"
    if problem.section in ("data", "model", "training"):
        return problem.section
    return "other"
