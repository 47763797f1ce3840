"""The Sweeps page's pieces: the spec form (plain values out) and pure Plotly builders."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.config import RunConfig
from engine.sweeps.spec import METHODS, METRICS

BATCH_SIZES = (4, 8, 16, 32, 64)


def spec_form(dataset_names: Sequence[str], arch_names: Sequence[str]) -> dict[str, Any]:
    """The widgets of a new sweep; returns the raw spec dict (checked by the engine, not here)."""
    defaults = RunConfig()
    left, middle, right = st.columns(3)
    with left:
        name = st.text_input("Name", key="sweeps_name", placeholder="optional")
        datasets = list(dataset_names)
        dataset = st.selectbox("Dataset", datasets, key="sweeps_dataset",
                               index=datasets.index(defaults.data.dataset) if defaults.data.dataset in datasets else 0)
        options_text = st.text_input("Dataset options (JSON)", value="{}", key="sweeps_options",
                                     help='Knobs of the dataset, e.g. {"num_samples": 300}.')
        names = list(arch_names)
        default_arch = defaults.model.architecture
        architecture = st.selectbox("Architecture", names, key="sweeps_arch",
                                    index=names.index(default_arch) if default_arch in names else 0)
        width = st.number_input("Width multiplier", 0.05, 8.0, 1.0, 0.05, key="sweeps_width")
    with middle:
        epochs = st.number_input("Epochs per trial", 1, 1000, 5, key="sweeps_epochs")
        batch_size = st.number_input("Batch size", 1, 4096, defaults.training.batch_size, key="sweeps_batch")
        folds = st.number_input("Folds (cross-validation; 1 = one validation split)", 1, 20, 1, key="sweeps_folds")
        method = st.selectbox("Method", METHODS, index=METHODS.index("optuna"), key="sweeps_method",
                              help="optuna: TPE sampler with median pruning of weak trials.")
        trials = st.number_input("Trials", 1, 1000, 6, key="sweeps_trials")
        metric = st.selectbox("Objective", METRICS, key="sweeps_metric")
    with right:
        space: dict[str, Any] = {}
        grid_points = st.number_input("Grid points per range", 2, 10, 3, key="sweeps_grid_points",
                                      disabled=method != "grid")
        if st.checkbox("Search the learning rate", True, key="sweeps_lr_on"):
            low_col, high_col = st.columns(2)
            low = low_col.number_input("from", 1e-6, 1.0, 1e-4, format="%.0e", key="sweeps_lr_low")
            high = high_col.number_input("to", 1e-6, 1.0, 1e-2, format="%.0e", key="sweeps_lr_high")
            log = st.checkbox("log scale", True, key="sweeps_lr_log")
            space["training.learning_rate"] = _range(low, high, log, method, grid_points)
        if st.checkbox("Search the dropout rate", True, key="sweeps_dropout_on"):
            low_col, high_col = st.columns(2)
            low = low_col.number_input("from", 0.0, 0.95, 0.0, 0.05, key="sweeps_dropout_low")
            high = high_col.number_input("to", 0.0, 0.95, 0.5, 0.05, key="sweeps_dropout_high")
            space["model.dropout_rate"] = _range(low, high, False, method, grid_points)
        architectures = st.multiselect("Architectures to try", list(arch_names), key="sweeps_arch_choices")
        if architectures:
            space["model.architecture"] = {"choices": architectures}
        batch_sizes = st.multiselect("Batch sizes to try", BATCH_SIZES, key="sweeps_batch_choices")
        if batch_sizes:
            space["training.batch_size"] = {"choices": list(batch_sizes)}
    try:
        options = json.loads(options_text or "{}")
    except json.JSONDecodeError:
        options = options_text  # the engine names the field and the fix
    base = {
        "name": name,
        "data": {"dataset": dataset, "options": options, "folds": int(folds) if folds > 1 else None},
        "model": {"architecture": architecture, "width_multiplier": float(width)},
        "training": {"epochs": int(epochs), "batch_size": int(batch_size)},
    }
    return {"name": name, "base": base, "method": method, "trials": int(trials), "metric": metric,
            "direction": "minimize" if metric.endswith("loss") else "maximize", "space": space}


def _range(low: float, high: float, log: bool, method: str, points: int) -> dict[str, Any]:
    """A range, or for a grid its ``points`` values (log-spaced on a log scale)."""
    if method != "grid":
        return {"low": low, "high": high, "log": log}
    if log and low > 0 and high > 0:
        values = np.geomspace(low, high, int(points))
    else:
        values = np.linspace(low, high, int(points))
    return {"values": [float(f"{v:.3g}") for v in values]}


def trials_frame(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per trial: outcome, objective (mean ± std over folds), parameters, runs."""
    rows = []
    for trial in report["trials"]:
        estimate = trial["estimate"] or {}
        row = {"trial": trial["trial"], "outcome": trial["outcome"] or "open",
               report["metric"]: trial["value"] if trial["value"] is not None else estimate.get("mean"),
               "± std": estimate.get("std"), "runs": ", ".join(map(str, trial["run_ids"]))}
        row.update({path: value for path, value in trial["params"].items()})
        rows.append(row)
    return rows


def parallel_figure(report: dict[str, Any]) -> go.Figure | None:
    """Parallel coordinates: one line per ended trial through its parameters to its objective."""
    trials = [t for t in report["trials"] if t["value"] is not None]
    if not trials:
        return None
    dimensions = []
    for path in report["space"]:
        values = [t["params"].get(path) for t in trials]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            log = report["space"][path].get("log")
            shown = [math.log10(v) if log and v > 0 else v for v in values]
            dimensions.append({"label": f"log10 {path}" if log else path, "values": shown})
        else:
            labels = sorted({str(v) for v in values})
            dimensions.append({"label": path, "values": [labels.index(str(v)) for v in values],
                               "tickvals": list(range(len(labels))), "ticktext": labels})
    objective = [t["value"] for t in trials]
    dimensions.append({"label": report["metric"], "values": objective})
    figure = go.Figure(go.Parcoords(
        line={"color": objective, "colorscale": "Viridis", "showscale": True,
              "reversescale": report["direction"] == "minimize"},
        dimensions=dimensions,
    ))
    figure.update_layout(height=360, margin={"l": 60, "r": 40, "t": 50, "b": 20})
    return figure


def importance_figure(importances: dict[str, float]) -> go.Figure | None:
    """Horizontal bars of Optuna's fANOVA importances (largest on top)."""
    if not importances:
        return None
    items = sorted(importances.items(), key=lambda item: item[1])
    figure = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h"))
    figure.update_layout(height=60 + 40 * len(items), margin={"l": 10, "r": 10, "t": 10, "b": 30},
                         xaxis_title="importance for the objective")
    return figure


__all__ = ["importance_figure", "parallel_figure", "spec_form", "trials_frame"]
