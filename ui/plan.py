"""The Train page's "Plan for me": the engine's automatic plan fills the form, each choice with its reason.

The plan is made by ``python -m engine plan`` in a subprocess (``engine.probe.plan``): it builds
candidate models and runs a learning-rate range test, which need TensorFlow, and the dashboard never
imports it. The answer is parked in session state and applied at the top of the next script run,
before the form's widgets exist (Streamlit refuses a new value for a widget already drawn), so every
field stays editable afterwards.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine import probe
from engine.config import PRESET_KNOBS
from engine.errors import LabError
from ui import train_form
from ui.doctor import nearest_option
from ui.text import markdown_text

PENDING_KEY = "_train_plan_pending"
RESULT_KEY = "train_plan_result"
# The form's labels of the fields a plan sets, for its reasons.
LABELS = {
    "data.options.size": "Size", "data.normalization": "Normalisation", "data.folds": "Cross-validation folds",
    "model.architecture": "Architecture", "model.padding": "Convolution padding",
    "model.width_multiplier": "Width multiplier", "model.batchnorm_momentum": "BatchNorm momentum",
    "training.batch_size": "Batch size", "training.epochs": "Epochs", "training.learning_rate": "Learning rate",
    "training.class_weight": "Class weights", "training.augment": "Augment", "training.augmentations": "Augmentations",
    "training.early_stopping": "Early stopping", "training.patience": "Patience", "training.monitor": "Monitor",
}


def widget_values(plan: dict[str, Any], arch_catalog: list[dict[str, Any]]) -> dict[str, Any]:
    """The Train form's widget keys and the values that reproduce the planned config."""
    config = plan["config"]
    data, model, training = config["data"], config["model"], config["training"]
    dataset, arch = data["dataset"], model["architecture"]
    preset = next(entry["defaults"] for entry in arch_catalog if entry["name"] == arch)
    values: dict[str, Any] = {
        "train_dataset": dataset, f"train_normalization_{dataset}": data["normalization"],
        "train_val_fraction": data["val_fraction"], "train_test_fraction": data["test_fraction"],
        "train_folds": data["folds"] or 1, "train_seed": training["seed"],
        "train_architecture": arch, "train_width_multiplier": model["width_multiplier"],
        "train_batchnorm_momentum": model["batchnorm_momentum"],
        "train_learning_rate": nearest_option(training["learning_rate"], train_form.LEARNING_RATES),
    }
    values.update({f"train_option_{dataset}_{key}": value for key, value in data["options"].items()})
    for knob in PRESET_KNOBS:  # None: the preset's reference value, which is what the preset's widget starts on
        value = preset[knob] if model[knob] is None else model[knob]
        values[f"train_{knob}_{arch}"] = float(value) if knob in ("dropout_rate", "l2") else value
    for name in ("epochs", "batch_size", "optimizer", "class_weight", "augment", "augmentations", "early_stopping",
                 "patience", "monitor"):
        values[f"train_{name}"] = training[name]
    return values


def apply_pending(arch_catalog: list[dict[str, Any]]) -> None:
    """Fill the form from a plan made in the previous script run; call before the form is drawn."""
    plan = st.session_state.pop(PENDING_KEY, None)
    if plan is None:
        return
    st.session_state[RESULT_KEY] = plan
    st.session_state.update(widget_values(plan, arch_catalog))


def plan_box(data: dict[str, Any], seed: int, allowed: bool, demo: bool) -> None:
    """The "Plan for me" button (with or without the range test) and, once planned, what the plan read."""
    button_column, test_column = st.columns([1, 2])
    with_test = test_column.toggle(
        "with a learning-rate range test", key="train_plan_lr_test", value=not demo, disabled=demo,
        help="Sweeps the rate over 60 batches from fresh weights (tens of seconds; recorded as an lr-find run). "
             "Off: Adam's usual 1e-3.",
    )
    clicked = button_column.button(
        "Plan for me", key="train_plan", icon=":material/auto_fix_high:", disabled=not allowed,
        help="Fills the form from the dataset's fingerprint (sizes, spacing, intensities, modality, class balance, "
             "sample count) and this machine's memory; every field stays editable.",
    )
    if clicked:
        try:
            with st.spinner("Planning: reading the dataset, sizing the model, testing learning rates..."):
                st.session_state[PENDING_KEY] = probe.plan(data["dataset"], data["options"], with_test, seed)
        except LabError as e:
            st.error(markdown_text(e), icon=":material/error:")
        else:
            st.rerun()
    plan = st.session_state.get(RESULT_KEY)
    if not plan:
        return
    facts = plan["dataset"]
    st.caption(markdown_text(
        f"Planned for {facts['dataset']}: {facts['num_samples']} samples, class counts "
        f"{', '.join(f'{n} {c}' for n, c in zip(facts['class_names'], facts['class_counts']))}, volumes "
        f"{'x'.join(map(str, facts['volume_shape']))}, modality {facts['modality_source']}; on "
        f"{plan['machine']['device']}. The reasons are under each section; change any field before launching."
    ))
    for note in plan["notes"]:
        st.warning(markdown_text(note), icon=":material/info:")


def _current(section_values: dict[str, Any], field: str) -> Any:
    name = field.split(".", 1)[1]
    if name.startswith("options."):
        return section_values.get("options", {}).get(name.removeprefix("options."))
    return section_values.get(name)


def reasons(section: str, section_values: dict[str, Any]) -> None:
    """The plan's reasons for the fields of one form section (data, model, training), marked where changed."""
    plan = st.session_state.get(RESULT_KEY)
    if not plan or plan["config"]["data"]["dataset"] != st.session_state.get("train_dataset"):
        return
    lines = []
    for choice in plan["choices"]:
        if not choice["field"].startswith(section + "."):
            continue
        current = _current(section_values, choice["field"])
        planned = choice["value"]
        if choice["field"] == "training.learning_rate":
            planned = nearest_option(planned, train_form.LEARNING_RATES)
        changed = current is not None and current != planned and not (
            isinstance(current, float) and isinstance(planned, (int, float)) and abs(current - planned) < 1e-12)
        label = LABELS.get(choice["field"], choice["field"])
        mark = " (you changed it)" if changed else ""
        lines.append(f"- **{markdown_text(label)}**{mark}: {markdown_text(choice['reason'])}.")
    if lines:
        with st.expander("Why the plan chose these", icon=":material/auto_fix_high:", expanded=True):
            st.markdown("\n".join(lines))
