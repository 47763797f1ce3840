"""The Sweeps page's pieces: the spec form (plain values out) and pure Plotly builders."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import statistics
from engine.config import RunConfig
from engine.sweeps.spec import METHODS, METRICS
from ui import figures, train_form

BATCH_SIZES = (4, 8, 16, 32, 64)
# Seconds between refreshes of the progress while a sweep runs (as the Runs page's live panel).
REFRESH_S = 2.0


def spec_form(dataset_catalog: Sequence[dict[str, Any]], arch_names: Sequence[str]) -> dict[str, Any]:
    """The widgets of a new sweep; returns the raw spec dict (checked by the engine, not here).

    The dataset's options are the Train page's widgets (ui.train_form.dataset_options), keyed ``sweeps_``.
    """
    defaults = RunConfig()
    by_name = {entry["name"]: entry for entry in dataset_catalog}
    name_column, dataset_column, arch_column = st.columns(3)
    name = name_column.text_input("Name", key="sweeps_name", placeholder="optional")
    datasets = list(by_name)
    dataset = dataset_column.selectbox(
        "Dataset", datasets, key="sweeps_dataset", format_func=lambda n: f"{by_name[n]['title']} ({n})",
        index=datasets.index(defaults.data.dataset) if defaults.data.dataset in datasets else 0)
    names = list(arch_names)
    default_arch = defaults.model.architecture
    architecture = arch_column.selectbox("Architecture", names, key="sweeps_arch",
                                         index=names.index(default_arch) if default_arch in names else 0)
    options = train_form.dataset_options(dataset, by_name[dataset], prefix="sweeps")
    left, middle, right = st.columns(3)
    with left:
        width = st.number_input("Width multiplier", 0.05, 8.0, 1.0, 0.05, key="sweeps_width")
        epochs = st.number_input("Epochs per trial", 1, 1000, 5, key="sweeps_epochs")
        batch_size = st.number_input("Batch size", 1, 4096, defaults.training.batch_size, key="sweeps_batch")
    with middle:
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


MISSING = "–"  # as the Compare summary shows a missing number


def number_text(value: Any) -> str:
    """A parameter or metric as the tables show it: "–" for none, 4 significant digits (0.000316, 0.3)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def objective_text(trial: dict[str, Any]) -> str:
    """The trial's objective: the mean ± sample std over its folds (as engine group prints it), else its
    value; "–" while it has none."""
    estimate = trial["estimate"]
    if estimate and estimate.get("std") is not None:
        return statistics.Estimate(**estimate).mean_std_text()
    value = trial["value"] if trial["value"] is not None else (estimate or {}).get("mean")
    return MISSING if value is None else f"{value:.4f}"


def best_text(best: dict[str, Any]) -> str:
    """"0.8123 ± 0.0210 (95% CI 0.7601–0.8645, 3 folds)", or the value alone for one fold."""
    estimate = best["estimate"]
    if not estimate or estimate.get("std") is None:
        return f"{best['value']:.4f}"
    described = statistics.Estimate(**estimate)
    return (f"{described.mean_std_text()} ({statistics.CONFIDENCE:.0%} CI {described.interval_text()}, "
            f"{described.n} folds)")


def params_text(params: dict[str, Any]) -> str:
    """"training.learning_rate 0.000316, model.dropout_rate 0.3"."""
    return ", ".join(f"{path} {number_text(value)}" for path, value in params.items())


def trials_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per trial, as text: outcome, objective (mean ± std over folds), its interval, parameters,
    runs. Numbers as on Train and Compare (4 significant digits, "–" where there is none)."""
    interval = f"{statistics.CONFIDENCE:.0%} CI"
    rows = []
    for trial in report["trials"]:
        estimate = trial["estimate"]
        row = {"trial": str(trial["trial"]), "outcome": trial["outcome"] or "open",
               report["metric"]: objective_text(trial),
               interval: (statistics.Estimate(**estimate).interval_text() or MISSING) if estimate else MISSING}
        row.update({path: number_text(trial["params"].get(path)) for path in report["space"]})
        row["runs"] = ", ".join(map(str, trial["run_ids"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial", "outcome", report["metric"], interval, *report["space"], "runs"])


def parallel_figure(report: dict[str, Any]) -> go.Figure | None:
    """Parallel coordinates: one line per ended trial through its parameters to its objective.

    Every axis increases upwards. A log-scale parameter is drawn on log10 but labelled with its own
    values (1e-4, 1e-3); the objective's axis says which way is better, and the colour is the same
    for both directions: yellow for the better trials.
    """
    trials = [t for t in report["trials"] if t["value"] is not None]
    if not trials:
        return None
    better = "lower" if report["direction"] == "minimize" else "higher"
    return figures.parallel_figure(
        {path: [t["params"].get(path) for t in trials] for path in report["space"]},
        f"{report['metric']} ({better} is better)", [t["value"] for t in trials],
        log_columns=[path for path, spec in report["space"].items() if spec.get("log")],
        lower_is_better=report["direction"] == "minimize", height=380,
    )


def importance_figure(importances: dict[str, float]) -> go.Figure | None:
    """Horizontal bars of Optuna's fANOVA importances (largest on top)."""
    if not importances:
        return None
    items = sorted(importances.items(), key=lambda item: item[1])
    figure = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h"))
    figure.update_layout(height=60 + 40 * len(items), margin={"l": 10, "r": 10, "t": 10, "b": 30},
                         xaxis_title="importance for the objective")
    return figure


__all__ = ["best_text", "importance_figure", "number_text", "objective_text", "parallel_figure", "params_text", "spec_form",
           "trials_frame"]
