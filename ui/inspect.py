"""The Inspect page's figure builders and cached engine reads.

The figure builders are pure functions from arrays and ``engine.evaluation``
results to Plotly figures and DataFrames (confusion matrix, ROC / PR curves,
class distribution per epoch, prediction history). The cached reads at the end
wrap ``engine.evaluation`` calls in ``st.cache_data``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from engine import evaluation
from engine.config import RunConfig
from engine.evaluation import metrics
from engine.evaluation import samples as evaluation_samples
from engine.store import open_store
from ui.text import markdown_text, plotly_text, plotly_texts

CLASS_COLORS = qualitative.Plotly


def class_color(index: int) -> str:
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def confusion_figure(
    counts: np.ndarray, normalized: np.ndarray, class_names: Sequence[str], title: str = "", height: int | None = None
) -> go.Figure:
    """Heatmap coloured by the row-normalised fraction, each cell labelled 'count (percent)'."""
    names = plotly_texts(class_names)  # tick labels and hover text are Plotly HTML
    counts = np.asarray(counts)
    normalized = np.asarray(normalized, dtype=float)
    text = [[f"{count}<br>{fraction:.0%}" for count, fraction in zip(row, fractions)]
            for row, fractions in zip(counts, normalized)]
    figure = go.Figure(
        go.Heatmap(
            z=normalized, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0.0, zmax=1.0,
            colorbar=dict(title="row %", tickformat=".0%", thickness=12),
            hovertemplate="true %{y}, predicted %{x}<br>%{text}<extra></extra>",
        )
    )
    side = height or min(560, 180 + 40 * len(names))
    figure.update_layout(title=plotly_text(title) or None, height=side, margin=dict(t=40 if title else 10, b=10, l=10, r=10))
    figure.update_xaxes(title="predicted", type="category", side="bottom")
    figure.update_yaxes(title="true", type="category", autorange="reversed")
    return figure


def _curve_trace(curve, index: int, binary: bool) -> go.Scatter:
    # A binary run has one curve, of its positive class: the legend names it too.
    name = f"{plotly_text(curve.class_name)} (AUC {curve.auc:.3f})"
    return go.Scatter(x=curve.x, y=curve.y, mode="lines", name=name, line=dict(color=class_color(index), width=2))


def roc_figure(curves, binary: bool, operating_point: tuple[float, float] | None = None) -> go.Figure:
    """ROC curves (one-vs-rest for several classes) with the chance diagonal and the current operating point."""
    figure = go.Figure([_curve_trace(curve, index, binary) for index, curve in enumerate(curves)])
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dot", color="gray")))
    if operating_point is not None:
        fpr, tpr = operating_point
        figure.add_trace(
            go.Scatter(x=[fpr], y=[tpr], mode="markers", name="threshold", marker=dict(size=11, color="black"))
        )
    figure.update_layout(title="ROC", height=340, margin=dict(t=40, b=10, l=10, r=10), legend=dict(x=0.45, y=0.05))
    figure.update_xaxes(title="false-positive rate (1 - specificity)", range=[0, 1])
    figure.update_yaxes(title="true-positive rate (sensitivity)", range=[0, 1.02])
    return figure


def pr_figure(curves, binary: bool, operating_point: tuple[float, float] | None = None) -> go.Figure:
    """Precision-recall curves; the legend shows each curve's average precision."""
    figure = go.Figure([_curve_trace(curve, index, binary) for index, curve in enumerate(curves)])
    for trace in figure.data:
        trace.name = trace.name.replace("AUC", "AP")
    if operating_point is not None:
        recall, precision = operating_point
        figure.add_trace(
            go.Scatter(x=[recall], y=[precision], mode="markers", name="threshold", marker=dict(size=11, color="black"))
        )
    figure.update_layout(title="Precision-recall", height=340, margin=dict(t=40, b=10, l=10, r=10),
                         legend=dict(x=0.05, y=0.05))
    figure.update_xaxes(title="recall", range=[0, 1])
    figure.update_yaxes(title="precision", range=[0, 1.02])
    return figure


def distribution_figure(epochs: Sequence[int], counts: np.ndarray, class_names: Sequence[str],
                        true_counts: Sequence[int] | None = None) -> go.Figure:
    """Stacked bars: how many samples were predicted as each class, per epoch (a collapse is one colour)."""
    counts = np.asarray(counts)
    figure = go.Figure(
        [
            go.Bar(x=list(epochs), y=counts[:, index], name=plotly_text(name), marker_color=class_color(index))
            for index, name in enumerate(class_names)
        ]
    )
    title = "Predicted classes per epoch (validation)"
    if true_counts is not None:
        title += " — true: " + ", ".join(f"{plotly_text(name)} {count}" for name, count in zip(class_names, true_counts))
    figure.update_layout(barmode="stack", title=title, height=300, margin=dict(t=40, b=10, l=10, r=10))
    figure.update_xaxes(title="epoch", dtick=1 if len(epochs) <= 30 else None)
    figure.update_yaxes(title="samples")
    return figure


# Legend entries per row under the prediction-history figure.
HISTORY_LEGEND_COLUMNS = 3


def history_figure(epochs: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str],
                   true_index: int, marker_epoch: int | None = None) -> go.Figure:
    """One sample's class probabilities across epochs; the true class is the thick line."""
    probabilities = np.asarray(probabilities)
    figure = go.Figure()
    for index, name in enumerate(class_names):
        figure.add_trace(
            go.Scatter(
                x=list(epochs), y=probabilities[:, index] if len(probabilities) else [], mode="lines+markers",
                name=f"{plotly_text(name)} (true)" if index == true_index else plotly_text(name),
                line=dict(color=class_color(index), width=4 if index == true_index else 1.5),
            )
        )
    if marker_epoch is not None:
        figure.add_vline(x=marker_epoch, line_dash="dot", line_color="gray")
    # The legend goes above the plot, a few classes a row: on the right it took most of the narrow
    # column and, with ten classes, ran past the figure's height.
    legend_rows = math.ceil(len(class_names) / HISTORY_LEGEND_COLUMNS)
    figure.update_layout(title=dict(text="Prediction history (validation)", y=0.99, yanchor="top"),
                         height=260 + 22 * legend_rows, margin=dict(t=40 + 22 * legend_rows, b=10, l=10, r=10),
                         legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0,
                                     entrywidth=1 / HISTORY_LEGEND_COLUMNS, entrywidthmode="fraction"))
    figure.update_xaxes(title="epoch", automargin=True)
    figure.update_yaxes(title="probability", range=[0, 1.02], automargin=True)
    return figure


def metric_value(value: float | None) -> str:
    """A headline metric: 3 decimals, or "n/a" when the split leaves it without a value (the caption under the
    metrics says "undefined (no samples)" and why; a longer word is cut off at 1280 px)."""
    return "n/a" if value is None else f"{value:.3f}"


def undefined_help(reason: str | None) -> str | None:
    return None if reason is None else f"Undefined: {reason} in this split."


def undefined_text(result: evaluation.Evaluation) -> str:
    """The sentence under the headline metrics of a split that misses a class: what is undefined and why."""
    parts = [f"{name.replace('_', ' ')}: {metrics.UNDEFINED_NO_SAMPLES}" if reason == metrics.NO_SAMPLES else
             f"{name.replace('_', ' ')}: undefined ({reason})" for name, reason in result.undefined.items()]
    return "This split lacks a class, so some metrics do not exist. " + "; ".join(parts) + "."


def per_class_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The per-class table with readable column names."""
    frame = pd.DataFrame(list(rows), columns=["class", "precision", "recall", "specificity", "f1", "support"])
    return frame.rename(columns={"recall": "recall (sensitivity)"})


def samples_display(table: pd.DataFrame) -> pd.DataFrame:
    """The samples table as shown: a sample without a group shows "–", not "None"."""
    groups = table["group"].map(lambda group: "–" if group is None or pd.isna(group) else str(group))
    return table.assign(group=groups)


def timeline_frame(events: Sequence[Mapping]) -> pd.DataFrame:
    """A run's events (``RunStore.get_events``) as a table, oldest first: the time on this server's clock to
    the second, the level, and the message as recorded (a DataFrame cell is plain text, never Markdown)."""
    return pd.DataFrame({
        "time": [dt.datetime.fromtimestamp(event["time"]).strftime("%Y-%m-%d %H:%M:%S") for event in events],
        "level": [str(event["level"]) for event in events],
        "message": [str(event["message"]) for event in events],
    }, columns=["time", "level", "message"])


def show_timeline(events: Sequence[Mapping], key: str) -> None:
    """The run's timeline (queued, started, stopped, resumed, warnings, ...) in a closed expander."""
    label = f"Timeline ({len(events)} event{'s' if len(events) != 1 else ''})"
    with st.expander(label, icon=":material/history:", key=f"{key}_expander"):
        if not events:
            st.caption("This run has recorded no events.")
            return
        st.dataframe(timeline_frame(events), hide_index=True, key=key,
                     column_config={"time": st.column_config.TextColumn(width="medium"),
                                    "level": st.column_config.TextColumn(width="small"),
                                    "message": st.column_config.TextColumn(width="large")})


def operating_point(evaluation) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Binary runs: the (FPR, TPR) and (recall, precision) of the current threshold; None otherwise.

    Read from the per-class table (scikit-learn's numbers, precision 0 when nothing is predicted
    positive), so the marker and the table never disagree.
    """
    if not evaluation.is_binary:
        return None
    positive = evaluation.per_class[evaluation.positive_index]
    if positive["recall"] is None or positive["specificity"] is None:
        return None  # a split without positives or without negatives has no ROC point (nor curve)
    tpr, precision = positive["recall"], positive["precision"]
    fpr = 1.0 - positive["specificity"]
    return (float(fpr), float(tpr)), (float(tpr), float(precision))


# ------------------------------------------------------------------ cached reads
# The functions below are the page's cached engine calls. Keys include the
# database URL (tests use several workspaces in one process) and a version
# token (status, epochs done) so a run that is still training is re-read.



@st.cache_data(show_spinner=False, max_entries=256)
def evaluation_at(db_url: str, run_id: int, split: str, epoch: int, threshold: float | None, version: tuple):
    return evaluation.evaluate_run(open_store(db_url), run_id, split, epoch, threshold=threshold)


@st.cache_data(show_spinner=False, max_entries=16)
def stored_epochs(db_url: str, run_id: int, split: str, version: tuple) -> dict:
    return evaluation.stored_epochs(open_store(db_url), run_id, split)


@st.cache_data(show_spinner=False, max_entries=64)
def distribution(db_url: str, run_id: int, num_classes: int, threshold: float | None, version: tuple,
                 positive_index: int | None = None):
    epochs = stored_epochs(db_url, run_id, "val", version)
    return evaluation.class_distribution_by_epoch(epochs, num_classes, threshold, positive_index)


@st.cache_resource(show_spinner="Loading the dataset...", max_entries=4)
def run_dataset(config_json: str, data_dir: str):
    """The run's dataset (memory-mapped); ``data_dir`` (the dataset cache) is part of the key."""
    return evaluation_samples.run_dataset(RunConfig.from_json(config_json))


@st.cache_data(show_spinner=False, max_entries=8)
def saliency(run_dir: str, modified: float):
    return evaluation.load_saliency(Path(run_dir))


# ------------------------------------------------------------- cached figures
# Building a Plotly figure costs tens of milliseconds (property validation), so
# figures are cached whole (st.cache_resource: no copy; st.plotly_chart only
# reads them). Moving the epoch slider then rebuilds the three validation
# figures and nothing else.


@st.cache_resource(show_spinner=False, max_entries=64)
def result_figures(db_url: str, run_id: int, split: str, epoch: int, threshold: float | None, version: tuple,
                   title: str) -> dict[str, go.Figure | None]:
    """The confusion matrix, ROC and PR figures of one split at one epoch and threshold."""
    result = evaluation_at(db_url, run_id, split, epoch, threshold, version)
    points = operating_point(result)
    return {
        "confusion": confusion_figure(result.counts, result.normalized, result.class_names, title),
        "roc": roc_figure(result.roc, result.is_binary, points and points[0]) if result.roc else None,
        "pr": pr_figure(result.pr, result.is_binary, points and points[1]) if result.pr else None,
    }


@st.cache_resource(show_spinner=False, max_entries=32)
def distribution_chart(db_url: str, run_id: int, class_names: tuple[str, ...], threshold: float | None,
                       version: tuple, true_counts: tuple[int, ...], positive_index: int | None = None) -> go.Figure:
    epochs, counts = distribution(db_url, run_id, len(class_names), threshold, version, positive_index)
    return distribution_figure(epochs, counts, class_names, true_counts)


@st.cache_resource(show_spinner=False, max_entries=32)
def history_chart(db_url: str, run_id: int, sample_id: int, class_names: tuple[str, ...], true_index: int,
                  marker_epoch: int, version: tuple) -> go.Figure | None:
    epochs, probabilities = evaluation.prediction_history(stored_epochs(db_url, run_id, "val", version), sample_id)
    if not epochs:
        return None
    return history_figure(epochs, probabilities, class_names, true_index, marker_epoch)


@st.cache_resource(show_spinner=False, max_entries=32)
def slices_chart(volume: np.ndarray, indices: tuple[int, ...], level: float, width: float,
                 overlay: np.ndarray | None) -> go.Figure:
    from ui import volumes

    return volumes.slices_figure(volume, indices, level, width, overlay)


@st.cache_resource(show_spinner=False, max_entries=16)
def volume_chart(volume: np.ndarray, level: float, width: float, overlay: np.ndarray | None) -> go.Figure:
    from ui import volumes

    return volumes.volume_figure(volume, level, width, overlay)


# ------------------------------------------------------------------- widgets
# Pixel widths that add up to less than the half-width column at 1280 px (about 400 px), so "support" fits.
PER_CLASS_FORMAT = {
    "class": st.column_config.TextColumn("class", width=64),
    "precision": st.column_config.NumberColumn("precision", format="%.3f", width=72),
    "recall (sensitivity)": st.column_config.NumberColumn(
        "recall", format="%.3f", width=60, help="Recall of the class, also called its sensitivity."),
    "specificity": st.column_config.NumberColumn("specificity", format="%.3f", width=78),
    "f1": st.column_config.NumberColumn("f1", format="%.3f", width=52),
    "support": st.column_config.NumberColumn("support", width=64, help="Samples of the class in this split."),
}


def show_results(result: evaluation.Evaluation, figures: dict[str, go.Figure | None], key: str) -> None:
    """One split's block: headline metrics, confusion matrix, per-class table, Youden's threshold, ROC and PR."""
    columns = st.columns(5 if result.is_binary else 4)
    undefined = result.undefined
    columns[0].metric("Accuracy", f"{result.accuracy:.3f}")
    columns[1].metric("Balanced accuracy", metric_value(result.balanced_accuracy),
                      help=undefined_help(undefined.get("balanced_accuracy")))
    auc = "-" if result.roc_auc is None else f"{result.roc_auc:.3f}"
    columns[2].metric("ROC AUC" if result.is_binary else "ROC AUC (macro OvR)", auc)
    if result.is_binary:
        positive, negative = markdown_text(result.positive_class), markdown_text(result.negative_class)
        columns[3].metric(f"Sensitivity ({positive})", metric_value(result.sensitivity),
                          help=f"The recall of {positive}, the positive class.")
        columns[4].metric(f"Specificity ({positive})", metric_value(result.specificity),
                          help=f"The recall of {negative}, the other class.")
    else:
        columns[3].metric("Mean loss", "-" if result.mean_loss is None else f"{result.mean_loss:.3f}")

    if undefined:
        st.caption(markdown_text(undefined_text(result)))
    left, right = st.columns(2)
    left.plotly_chart(figures["confusion"], key=f"{key}_cm")
    right.dataframe(
        per_class_frame(result.per_class), hide_index=True, key=f"{key}_per_class", column_config=PER_CLASS_FORMAT
    )
    if result.youden is not None:
        right.caption(
            f"Youden's J is highest at threshold {result.youden.threshold:.3f} on "
            f"P({markdown_text(result.positive_class)}) "
            f"(sensitivity {result.youden.sensitivity:.3f}, specificity {result.youden.specificity:.3f})."
        )
    if figures["roc"] is not None:
        roc_column, pr_column = st.columns(2)
        roc_column.plotly_chart(figures["roc"], key=f"{key}_roc")
        pr_column.plotly_chart(figures["pr"], key=f"{key}_pr")
    else:
        st.warning("This split holds one class only, so ROC and PR curves are undefined.")
