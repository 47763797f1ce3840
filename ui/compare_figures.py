"""The Compare page's Plotly figures: pure functions from engine.compare results to ``go.Figure``.

Every run keeps one colour on every chart of the page (``run_colors``: by its
place in the selection); a group is drawn in its first run's colour. User
strings go through ``ui.text.plotly_text`` (Plotly renders a subset of HTML).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

from engine.compare import Series
from ui.figures import run_color
from ui.text import plotly_text

AXIS_TITLES = {"epoch": "epoch", "time": "wall time since the run started (s)"}


def run_colors(run_ids: Sequence[int]) -> dict[int, str]:
    """One colour per run, by its place in the selection (the same on every chart of the page)."""
    return {int(run_id): run_color(index) for index, run_id in enumerate(run_ids)}


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = hex_to_rgb(color)
    return f"rgba({red}, {green}, {blue}, {alpha})"


def curves_figure(series: Sequence[Series], colors: Mapping[int, str], metric: str, axis: str = "epoch") -> go.Figure:
    """Overlaid curves: training solid, validation dashed; a group's mean with a shaded mean ± std band."""
    figure = go.Figure()
    for line in series:
        color = colors.get(line.run_ids[0], run_color(0))
        name = plotly_text(f"{line.label} · {'validation' if line.is_validation else 'training'}")
        group = plotly_text(f"{line.run_ids}-{line.metric}")
        if line.std is not None and len(line.x):
            figure.add_trace(go.Scatter(
                x=np.concatenate([line.x, line.x[::-1]]), y=np.concatenate([line.y + line.std, (line.y - line.std)[::-1]]),
                fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                showlegend=False, legendgroup=group, name=name + " ± std",
            ))
        figure.add_trace(go.Scatter(
            x=line.x, y=line.y, mode="lines", name=name + (" (mean)" if line.std is not None else ""),
            legendgroup=group, line=dict(color=color, dash="dash" if line.is_validation else "solid", width=2),
            meta={"run_ids": list(line.run_ids), "metric": line.metric},
            hovertemplate=f"{name}<br>%{{x:.4g}}: %{{y:.4g}}<extra></extra>",
        ))
    figure.update_layout(
        title=plotly_text(metric), height=420, margin=dict(t=40, b=40, l=60, r=10),
        legend=dict(orientation="h", y=-0.2), xaxis_title=AXIS_TITLES.get(axis, axis), yaxis_title=plotly_text(metric),
    )
    return figure


def _dimension(label: str, values: Sequence[Any]) -> dict[str, Any]:
    """A parallel-coordinates axis: numbers as they are, anything else as categories."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        return dict(label=plotly_text(label), values=[float(v) for v in values], tickformat=".4~g")
    categories = sorted({str(v) for v in values})
    codes = [categories.index(str(v)) for v in values]
    return dict(label=plotly_text(label), values=codes, tickvals=list(range(len(categories))),
                ticktext=[plotly_text(c) for c in categories])


def parallel_figure(frame: pd.DataFrame, fields: Sequence[str], result_metric: str, result_title: str) -> go.Figure:
    """Parallel coordinates over the varied config fields and the result metric (runs with a result)."""
    rows = frame[frame[result_metric].notna()]
    dimensions = [_dimension(name, list(rows[name])) for name in fields]
    dimensions.append(dict(label=plotly_text(result_title), values=[float(v) for v in rows[result_metric]],
                           tickformat=".4~g"))
    figure = go.Figure(go.Parcoords(
        # Coloured by the result; its own axis (the last) is the scale, so no colour bar.
        line=dict(color=[float(v) for v in rows[result_metric]], colorscale="Viridis", showscale=False),
        dimensions=dimensions, labelangle=-20, labelside="top",  # long field names would overlap when flat
    ))
    figure.update_layout(height=400, margin=dict(t=90, b=30, l=80, r=60))
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


__all__ = ["curves_figure", "parallel_figure", "run_colors", "scatter_figure"]
