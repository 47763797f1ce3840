"""Plotly figures of one volume: three orthogonal slices and a downsampled 3D view, optionally with a saliency overlay.

Pure functions (no streamlit). Volumes are (D, H, W) arrays; an overlay is a
map in [0, 1] of the same shape (``engine.evaluation.map_for_sample`` resamples
a stored Grad-CAM map to the volume's shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ui import figures

# The three orthogonal planes: title and the volume axis each one cuts across.
PLANES = (("axial", 0), ("coronal", 1), ("sagittal", 2))
# The 3D view is drawn from at most this many voxels per edge (stays fast in the browser).
MAX_3D_EDGE = 24


def window_defaults(volume: np.ndarray) -> tuple[float, float, float, float]:
    """(low, high) of the intensity range and a default (level, width) from the 1st-99th percentiles."""
    values = np.asarray(volume, dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    p1, p99 = (float(v) for v in np.percentile(values, [1, 99]))
    if p99 <= p1:
        p1, p99 = low, max(high, low + 1e-6)
    return low, high, (p1 + p99) / 2.0, p99 - p1


def focus(volume: np.ndarray, overlay: np.ndarray | None = None) -> tuple[int, int, int]:
    """Where the slice viewer starts: the overlay's peak when there is one, else the volume's centre."""
    if overlay is not None and float(np.max(overlay)) > 0:
        return tuple(int(index) for index in np.unravel_index(int(np.argmax(overlay)), overlay.shape))
    return tuple(edge // 2 for edge in volume.shape[:3])


def plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D slice of ``volume`` at ``index`` across ``axis``."""
    index = int(np.clip(index, 0, volume.shape[axis] - 1))
    return np.take(np.asarray(volume), index, axis=axis)


def slices_figure(
    volume: np.ndarray,
    indices: Sequence[int],
    level: float,
    width: float,
    overlay: np.ndarray | None = None,
    height: int = 300,
) -> go.Figure:
    """Axial, coronal and sagittal slices at ``indices`` (one per axis), grey-scale windowed by level/width."""
    titles = [f"{name} {int(indices[axis])}/{volume.shape[axis] - 1}" for name, axis in PLANES]
    images = [plane(volume, axis, indices[axis]) for _, axis in PLANES]
    overlays = None if overlay is None else [[plane(overlay, axis, indices[axis]) for _, axis in PLANES]]
    return figures.slice_grid_figure([images], [titles], window=(level - width / 2.0, level + width / 2.0),
                                     overlays=overlays, height=height)


def downsample(volume: np.ndarray, max_edge: int = MAX_3D_EDGE) -> np.ndarray:
    """Block-average ``volume`` so no edge exceeds ``max_edge`` (a cheap, alias-free shrink)."""
    volume = np.asarray(volume, dtype=np.float32)
    factor = int(np.ceil(max(volume.shape) / max_edge))
    if factor <= 1:
        return volume
    padded_shape = [int(np.ceil(edge / factor)) * factor for edge in volume.shape]
    padded = np.pad(volume, [(0, p - e) for p, e in zip(padded_shape, volume.shape)], mode="edge")
    d, h, w = (edge // factor for edge in padded_shape)
    return padded.reshape(d, factor, h, factor, w, factor).mean(axis=(1, 3, 5))


def volume_figure(
    volume: np.ndarray,
    level: float,
    width: float,
    overlay: np.ndarray | None = None,
    max_edge: int = MAX_3D_EDGE,
    height: int = 380,
) -> go.Figure:
    """A 3D isosurface view of the (downsampled) volume, with the saliency map's hot spots in red."""
    small = downsample(volume, max_edge)
    z, y, x = np.mgrid[0 : small.shape[0], 0 : small.shape[1], 0 : small.shape[2]]
    coords = dict(x=x.ravel(), y=y.ravel(), z=z.ravel())
    low, high = level - width / 2.0, level + width / 2.0
    figure = go.Figure(
        go.Isosurface(
            **coords, value=small.ravel(), isomin=level, isomax=high, surface_count=2, opacity=0.3,
            colorscale="gray", showscale=False, caps=dict(x_show=False, y_show=False, z_show=False), name="volume",
        )
    )
    if overlay is not None:
        figure.add_trace(
            go.Isosurface(
                **coords, value=downsample(overlay, max_edge).ravel(), isomin=0.5, isomax=1.0, surface_count=2,
                opacity=0.45, colorscale="YlOrRd", showscale=False, caps=dict(x_show=False, y_show=False, z_show=False),
                name="Grad-CAM",
            )
        )
    figure.update_layout(
        height=height,
        margin=dict(t=10, b=0, l=0, r=0),
        scene=dict(xaxis_title="width", yaxis_title="height", zaxis_title="depth", aspectmode="data"),
        meta=dict(window=[low, high]),
    )
    return figure
