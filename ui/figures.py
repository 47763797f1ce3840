"""Plotly figure builders: pure functions from plain data to ``go.Figure``.

No streamlit here, so each builder can be tested with plain lists and arrays. Names and titles
arrive as plain text and are escaped here for Plotly's HTML subset (``ui.text.plotly_text``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ui.text import plotly_text, plotly_texts

# One colour per run, cycling; training is a solid line, validation dashed.
RUN_COLORS = qualitative.Plotly
# The two panels of the live curves and the metrics drawn in each.
CURVE_PANELS = (("Loss", "loss"), ("Accuracy", "accuracy"))

EpochHistory = Sequence[Mapping[str, Any]]  # [{"epoch": 1, "loss": ..., "val_loss": ...}, ...]
BatchRows = Sequence[Mapping[str, Any]]  # [{"epoch": 1, "step": 3, "value": ...}, ...]


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def class_balance_figure(class_names: Sequence[str], counts: Sequence[int]) -> go.Figure:
    """Bar chart of samples per class."""
    figure = go.Figure(go.Bar(x=plotly_texts(class_names), y=list(counts), text=list(counts)))
    figure.update_traces(textposition="outside", cliponaxis=False)
    figure.update_layout(
        title="Class balance", xaxis_title="class", yaxis_title="samples", height=280, margin=dict(t=40, b=30, l=40, r=10)
    )
    figure.update_xaxes(type="category")
    return figure


def slices_figure(slices: Sequence[np.ndarray], titles: Sequence[str]) -> go.Figure:
    """A row of 2D grey-scale slices (e.g. the middle slice of one sample per class)."""
    count = max(len(slices), 1)
    figure = make_subplots(rows=1, cols=count, subplot_titles=plotly_texts(titles) or None, horizontal_spacing=0.02)
    for column, image in enumerate(slices, start=1):
        figure.add_trace(
            go.Heatmap(z=np.asarray(image, dtype=float), colorscale="gray", showscale=False, hoverinfo="skip"),
            row=1,
            col=column,
        )
        figure.update_xaxes(visible=False, row=1, col=column)
        figure.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{column if column > 1 else ''}", row=1, col=column)
    figure.update_layout(height=200, margin=dict(t=30, b=0, l=0, r=0))
    return figure


def curves_figure(histories: Mapping[int, EpochHistory], labels: Mapping[int, str] | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), one colour per run."""
    labels = labels or {}
    figure = make_subplots(rows=1, cols=len(CURVE_PANELS), subplot_titles=[title for title, _ in CURVE_PANELS])
    for index, (run_id, history) in enumerate(histories.items()):
        color = run_color(index)
        label = plotly_text(labels.get(run_id, f"run {run_id}"))
        for column, (_, metric) in enumerate(CURVE_PANELS, start=1):
            for prefix, dash in (("", "solid"), ("val_", "dash")):
                name = prefix + metric
                points = [(row["epoch"], row[name]) for row in history if row.get(name) is not None]
                if not points:
                    continue
                epochs, values = zip(*points)
                figure.add_trace(
                    go.Scatter(
                        x=list(epochs),
                        y=list(values),
                        mode="lines+markers",
                        name=f"{label} {'validation' if prefix else 'training'}",
                        legendgroup=str(run_id),
                        showlegend=column == 1,
                        line=dict(color=color, dash=dash),
                        meta={"run_id": run_id, "metric": name},
                    ),
                    row=1,
                    col=column,
                )
    last_epoch = _max_epoch(histories)
    # Explicit range: a margin after the last point, so a single first epoch is not drawn on the edge.
    figure.update_xaxes(title_text="epoch", range=[0, last_epoch + max(0.5, 0.04 * last_epoch)],
                        dtick=1 if last_epoch <= 20 else None)
    figure.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    figure.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    figure.update_layout(height=340, margin=dict(t=40, b=40, l=50, r=10), legend=dict(orientation="h", y=-0.25))
    return figure


def _max_epoch(histories: Mapping[int, EpochHistory]) -> int:
    return max((row["epoch"] for history in histories.values() for row in history), default=0)


def batch_positions(rows: BatchRows) -> list[float]:
    """Fractional epoch of each batch row: epoch - 1 + (step + 1) / steps_per_epoch.

    Steps per epoch are not stored; the largest step seen in any epoch stands in
    for it (exact once one epoch has completed).
    """
    steps_per_epoch = max((int(row["step"] or 0) for row in rows), default=0) + 1
    return [row["epoch"] - 1 + (int(row["step"] or 0) + 1) / steps_per_epoch for row in rows]


def batch_loss_figure(batches: Mapping[int, BatchRows], labels: Mapping[int, str] | None = None) -> go.Figure:
    """The throttled per-batch training loss, x in fractional epochs."""
    labels = labels or {}
    figure = go.Figure()
    for index, (run_id, rows) in enumerate(batches.items()):
        if not rows:
            continue
        figure.add_trace(
            go.Scatter(
                x=batch_positions(rows),
                y=[row["value"] for row in rows],
                mode="lines",
                name=plotly_text(labels.get(run_id, f"run {run_id}")),
                line=dict(color=run_color(index), width=1),
            )
        )
    figure.update_layout(
        title="Training loss per batch (throttled)",
        xaxis_title="epoch",
        yaxis_title="loss",
        height=260,
        margin=dict(t=40, b=40, l=50, r=10),
        showlegend=len(batches) > 1,
    )
    figure.update_xaxes(rangemode="tozero")
    return figure


def before_after_figure(before: Sequence[np.ndarray], after: Sequence[np.ndarray], titles: Sequence[str]) -> go.Figure:
    """One row per volume (titled on the left), its slice before (left) and after (right) a transform.

    Both slices of a row share one grey scale (the range of the two together), so a change of
    brightness or contrast shows instead of being rescaled away.
    """
    count = max(len(before), 1)
    figure = make_subplots(rows=count, cols=2, column_titles=["before", "after"], horizontal_spacing=0.02,
                           vertical_spacing=0.02)
    for row, (first, second, title) in enumerate(zip(before, after, plotly_texts(titles)), start=1):
        low = float(min(np.min(first), np.min(second)))
        high = max(float(max(np.max(first), np.max(second))), low + 1e-6)
        for column, image in enumerate((first, second), start=1):
            figure.add_trace(
                go.Heatmap(z=np.asarray(image, dtype=float), colorscale="gray", zmin=low, zmax=high, showscale=False,
                           hovertemplate="%{z:.3f}<extra></extra>"),
                row=row, col=column,
            )
            anchor = (row - 1) * 2 + column
            figure.update_xaxes(visible=False, constrain="domain", row=row, col=column)
            figure.update_yaxes(visible=column == 1, showticklabels=False, ticks="", showgrid=False, zeroline=False,
                                title_text=title if column == 1 else None, autorange="reversed",
                                scaleanchor=f"x{anchor if anchor > 1 else ''}", row=row, col=column)
    figure.update_layout(height=40 + 150 * count, margin={"t": 30, "b": 0, "l": 30, "r": 0})
    return figure
