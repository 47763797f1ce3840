"""Plotly figure builders: pure functions from plain data to ``go.Figure``.

No streamlit here, so each builder can be tested with plain lists and arrays. Names and titles
arrive as plain text and are escaped here for Plotly's HTML subset (``ui.text.plotly_text``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative
from plotly.subplots import make_subplots

from engine.compare import Series
from ui.text import plotly_text, plotly_texts

# One colour per run, cycling; training is a solid line, validation dashed.
RUN_COLORS = qualitative.Plotly
# The two panels of the live curves and the metrics drawn in each.
CURVE_PANELS = (("Loss", "loss"), ("Accuracy", "accuracy"))
# The x axis of a curve: epochs, or wall time (engine.compare.AXES).
AXIS_TITLES = {"epoch": "epoch", "time": "wall time since the run started (s)"}
# Saliency overlay on a grey-scale slice: transparent at 0, opaque red-yellow at 1.
OVERLAY_COLORSCALE = [
    [0.0, "rgba(255,0,0,0)"],
    [0.3, "rgba(255,0,0,0.05)"],
    [0.6, "rgba(255,80,0,0.45)"],
    [1.0, "rgba(255,230,0,0.75)"],
]

EpochHistory = Sequence[Mapping[str, Any]]  # [{"epoch": 1, "loss": ..., "val_loss": ...}, ...]
BatchRows = Sequence[Mapping[str, Any]]  # [{"epoch": 1, "step": 3, "value": ...}, ...]


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def run_colors(run_ids: Sequence[int]) -> dict[int, str]:
    """One colour per run, by its place in the selection (the same on every chart of a page)."""
    return {int(run_id): run_color(index) for index, run_id in enumerate(run_ids)}


def class_balance_figure(class_names: Sequence[str], counts: Sequence[int]) -> go.Figure:
    """Bar chart of samples per class."""
    figure = go.Figure(go.Bar(x=plotly_texts(class_names), y=list(counts), text=list(counts)))
    figure.update_traces(textposition="outside", cliponaxis=False)
    figure.update_layout(
        title="Class balance", xaxis_title="class", yaxis_title="samples", height=280, margin=dict(t=40, b=30, l=40, r=10)
    )
    figure.update_xaxes(type="category")
    return figure


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


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = hex_to_rgb(color)
    return f"rgba({red}, {green}, {blue}, {alpha})"


def curves_figure(panels: Sequence[tuple[str, Sequence[Series]]], colors: Mapping[int, str], axis: str = "epoch",
                  *, height: int = 340, fixed_ranges: bool = False) -> go.Figure:
    """Metric curves, one panel per (title, lines): training solid, validation dashed, each line in its
    first run's colour; a group's mean (``Series.std`` set) with a shaded mean ± std band.

    ``fixed_ranges`` (the live view): the x axis starts at 0 and ends a margin after the last point (a
    single first epoch is not drawn on the edge), a loss panel starts at 0 and an accuracy panel is 0-1.
    """
    figure = make_subplots(rows=1, cols=max(len(panels), 1), subplot_titles=[plotly_text(t) for t, _ in panels] or None)
    legend_seen: set[str] = set()
    for column, (_, lines) in enumerate(panels, start=1):
        for line in lines:
            color = colors.get(line.run_ids[0], run_color(0))
            name = plotly_text(f"{line.label} · {'validation' if line.is_validation else 'training'}")
            group = f"{line.run_ids}-{line.is_validation}"
            if line.std is not None and len(line.x):
                figure.add_trace(go.Scatter(
                    x=np.concatenate([line.x, line.x[::-1]]),
                    y=np.concatenate([line.y + line.std, (line.y - line.std)[::-1]]),
                    fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                    showlegend=False, legendgroup=group, name=name + " ± std",
                ), row=1, col=column)
            figure.add_trace(go.Scatter(
                # Plain lists: a chart's points stay readable in the page (tools/load_test.py counts them).
                x=np.asarray(line.x).tolist(), y=np.asarray(line.y).tolist(),
                mode="lines+markers" if len(line.x) <= 50 else "lines",
                name=name + (" (mean)" if line.std is not None else ""), legendgroup=group,
                showlegend=group not in legend_seen,
                line=dict(color=color, dash="dash" if line.is_validation else "solid", width=2),
                meta={"run_ids": list(line.run_ids), "metric": line.metric},
                hovertemplate=f"{name}<br>%{{x:.4g}}: %{{y:.4g}}<extra></extra>",
            ), row=1, col=column)
            legend_seen.add(group)
    figure.update_xaxes(title_text=AXIS_TITLES.get(axis, plotly_text(axis)))
    for column, (title, _) in enumerate(panels, start=1):
        figure.update_yaxes(title_text=plotly_text(title), row=1, col=column)
    if fixed_ranges:
        last = max((float(np.max(line.x)) for _, lines in panels for line in lines if len(line.x)), default=0.0)
        figure.update_xaxes(range=[0, last + max(0.5, 0.04 * last)], dtick=1 if axis == "epoch" and last <= 20 else None)
        for column, (title, _) in enumerate(panels, start=1):
            if "accuracy" in title.lower():
                figure.update_yaxes(range=[0, 1.02], row=1, col=column)
            else:
                figure.update_yaxes(rangemode="tozero", row=1, col=column)
    figure.update_layout(height=height, margin=dict(t=40, b=40, l=60, r=10), legend=dict(orientation="h", y=-0.25))
    return figure


SliceWindow = Literal["cell", "row"] | tuple[float, float]


def slice_grid_figure(
    images: Sequence[Sequence[np.ndarray]],
    titles: Sequence[Sequence[str]] | None = None,
    *,
    row_titles: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
    window: SliceWindow = "cell",
    overlays: Sequence[Sequence[np.ndarray]] | None = None,
    row_height: int = 150,
    height: int | None = None,
) -> go.Figure:
    """A grid of grey-scale 2D slices, ``images[row][column]`` (rows may be shorter than the widest).

    ``titles`` (per cell), ``row_titles`` (on the left) and ``column_titles`` arrive as plain text.
    ``window``: "cell" scales each slice to its own range, "row" gives a row one scale (a change of
    brightness between before and after shows instead of being rescaled away), (low, high) is a fixed
    window (level ± width / 2). ``overlays`` (same shape as ``images``, values in [0, 1]) are drawn over
    the slices as a saliency map with one colour bar.
    """
    row_count = max(len(images), 1)
    column_count = max([len(cells) for cells in images] + [1])
    cell_titles = []
    for row in range(row_count):
        given = list(titles[row]) if titles is not None and row < len(titles) else []
        cell_titles += [plotly_text(t) for t in given] + [""] * (column_count - len(given))
    figure = make_subplots(
        rows=row_count, cols=column_count, subplot_titles=cell_titles if any(cell_titles) else None,
        column_titles=plotly_texts(column_titles) if column_titles else None,
        horizontal_spacing=0.02,
        # Room for each row's cell titles; without them the rows sit close (before / after pairs).
        vertical_spacing=0.25 / row_count if any(cell_titles) else 0.02,
    )
    # make_subplots numbers the axes row by row ("x", "x2", ...); the traces name their axes and the axes
    # are set in one update_layout: add_trace(row=, col=) and update_xaxes(row=, col=) each walk the whole
    # grid, which made a 10 x 6 grid take a second to build.
    def axis_suffix(row: int, column: int) -> str:
        position = (row - 1) * column_count + column
        return str(position) if position > 1 else ""

    traces = []
    for row, cells in enumerate(images, start=1):
        low = high = None
        if window == "row" and cells:
            low = float(min(np.min(image) for image in cells))
            high = max(float(max(np.max(image) for image in cells)), low + 1e-6)
        elif isinstance(window, tuple):
            low, high = float(window[0]), float(window[1])
        for column, image in enumerate(cells, start=1):
            title = cell_titles[(row - 1) * column_count + column - 1]
            on_axes = dict(xaxis="x" + axis_suffix(row, column), yaxis="y" + axis_suffix(row, column))
            traces.append(go.Heatmap(
                z=np.asarray(image, dtype=float), colorscale="gray", zmin=low, zmax=high, showscale=False,
                hovertemplate=(f"{title}<br>" if title else "") + "x %{x}, y %{y}: %{z:.3g}<extra></extra>",
                **on_axes,
            ))
            if overlays is not None:
                traces.append(go.Heatmap(
                    z=np.asarray(overlays[row - 1][column - 1], dtype=float), colorscale=OVERLAY_COLORSCALE,
                    zmin=0.0, zmax=1.0, showscale=(row, column) == (1, len(cells)),
                    colorbar=dict(title="Grad-CAM", len=0.8, thickness=10),
                    hovertemplate="saliency %{z:.2f}<extra></extra>", **on_axes,
                ))
    figure.add_traces(traces)
    axes: dict[str, Any] = {}
    for row in range(1, row_count + 1):
        for column in range(1, column_count + 1):
            suffix = axis_suffix(row, column)
            label = row_titles[row - 1] if row_titles and column == 1 and row <= len(row_titles) else None
            axes["xaxis" + suffix] = dict(visible=False, constrain="domain")
            axes["yaxis" + suffix] = dict(
                visible=label is not None, showticklabels=False, ticks="", showgrid=False, zeroline=False,
                autorange="reversed", scaleanchor="x" + suffix,
                **({"title_text": plotly_text(label)} if label is not None else {}))
    figure.update_layout(axes)
    figure.update_annotations(font_size=12)
    figure.update_layout(height=height or 40 + row_height * row_count,
                         margin=dict(t=30, b=0, l=30 if row_titles else 0, r=0))
    return figure


def _parallel_axis(label: str, values: Sequence[Any], log: bool = False) -> dict[str, Any]:
    """A parallel-coordinates axis: numbers as they are (a log-scale one on log10, labelled with its own
    values: 1e-4, 1e-3), anything else as sorted categories."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        numbers = [float(v) for v in values]
        if log and numbers and all(v > 0 for v in numbers):
            logs = [math.log10(v) for v in numbers]
            decades = list(range(math.floor(min(logs)), math.ceil(max(logs)) + 1))
            return dict(label=plotly_text(label), values=logs, tickvals=decades, ticktext=[f"1e{d}" for d in decades],
                        range=[min(decades), max(decades)])
        return dict(label=plotly_text(label), values=numbers, tickformat=".4~g")
    categories = sorted({str(v) for v in values})
    return dict(label=plotly_text(label), values=[categories.index(str(v)) for v in values],
                tickvals=list(range(len(categories))), ticktext=plotly_texts(categories))


def parallel_figure(columns: Mapping[str, Sequence[Any]], result_label: str, result: Sequence[float], *,
                    log_columns: Sequence[str] = (), lower_is_better: bool = False, height: int = 400) -> go.Figure:
    """Parallel coordinates: one axis per column (a config field or search parameter, values per run or
    trial) and the result last, every line coloured by its result: yellow for the better ones.

    Every axis increases upwards; ``result_label`` should say which way is better where that is not plain.
    """
    dimensions = [_parallel_axis(name, values, name in log_columns) for name, values in columns.items()]
    dimensions.append(dict(label=plotly_text(result_label), values=[float(v) for v in result], tickformat=".4~g"))
    figure = go.Figure(go.Parcoords(
        # Coloured by the result; its own axis (the last) is the scale, so no colour bar.
        line=dict(color=[float(v) for v in result], colorscale="Viridis", showscale=False,
                  reversescale=lower_is_better),
        dimensions=dimensions, labelangle=-20, labelside="top",  # long field names would overlap when flat
    ))
    figure.update_layout(height=height, margin=dict(t=90, b=30, l=80, r=60))
    return figure


def scatter_figure(frame: pd.DataFrame, field: str, result_metric: str, result_title: str,
                   colors: Mapping[int, str]) -> go.Figure:
    """One point per run: a config field against the result metric, in the run's colour."""
    figure = go.Figure()
    # Effective values: a knob the preset decided is drawn at the preset's value, as an open marker.
    from_preset = frame.attrs.get("from_preset", {}).get(field, [False] * len(frame))
    for (_, row), preset in zip(frame.iterrows(), from_preset):
        if pd.isna(row[result_metric]):
            continue
        label = plotly_text(row["run"])
        mark = " (preset)" if preset else ""
        figure.add_trace(go.Scatter(
            x=[row[field] if isinstance(row[field], (int, float)) else plotly_text(row[field])],
            y=[row[result_metric]], mode="markers", name=label, showlegend=False,
            marker=dict(color=colors.get(int(row["run id"]), run_color(0)), size=11,
                        line=dict(width=2) if preset else dict(width=1, color="white"),
                        symbol="circle-open" if preset else "circle"),
            hovertemplate=f"{label}<br>{plotly_text(field)} %{{x}}{mark}<br>%{{y:.4g}}<extra></extra>",
        ))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in frame[field].dropna())
    figure.update_layout(height=360, margin=dict(t=30, b=40, l=60, r=10), xaxis_title=plotly_text(field),
                         yaxis_title=plotly_text(result_title))
    if not numeric:
        figure.update_xaxes(type="category")
    elif frame[field].dropna().gt(0).all() and frame[field].max() / max(frame[field].min(), 1e-300) >= 100:
        figure.update_xaxes(type="log")  # learning rates, L2 factors
    return figure


def intensity_histogram_figure(edges: Sequence[float], counts_by_class: dict[str, Sequence[int]]) -> go.Figure:
    """Voxel intensity histogram, one step line per class (fraction of that class's voxels), log scale."""
    bounds = np.asarray(edges, dtype=float)
    centres = (bounds[:-1] + bounds[1:]) / 2
    figure = go.Figure()
    for class_name, counts in counts_by_class.items():
        voxels = np.asarray(counts, dtype=float)
        fractions = voxels / max(voxels.sum(), 1.0)
        label = plotly_text(class_name)
        figure.add_trace(go.Scatter(
            x=centres, y=np.where(fractions > 0, fractions, np.nan), mode="lines", line_shape="hvh", name=label,
            hovertemplate=f"{label}<br>intensity %{{x:.3g}}: %{{y:.2%}}<extra></extra>",
        ))
    figure.update_layout(title="Voxel intensities", xaxis_title="intensity", yaxis_title="fraction of voxels",
                         height=280, margin=dict(t=40, b=30, l=50, r=10), legend=dict(title="class"))
    figure.update_yaxes(type="log")
    return figure
