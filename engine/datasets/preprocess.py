"""Intensity normalisation and resampling of volumes."""

from __future__ import annotations

import numpy as np

from engine.config import NORMALIZATIONS


def normalize(volumes: np.ndarray, method: str) -> np.ndarray:
    """Per-volume normalisation of a batch (N, D, H, W[, C]): "none", "minmax" to [0, 1], or "zscore"."""
    volumes = np.asarray(volumes, dtype=np.float32)
    if method == "none":
        return volumes
    axes = tuple(range(1, volumes.ndim))
    if method == "minmax":
        low = volumes.min(axis=axes, keepdims=True)
        span = volumes.max(axis=axes, keepdims=True) - low
        return (volumes - low) / np.where(span > 0, span, 1.0)
    if method == "zscore":
        mean = volumes.mean(axis=axes, keepdims=True)
        std = volumes.std(axis=axes, keepdims=True)
        return (volumes - mean) / np.where(std > 0, std, 1.0)
    raise ValueError(f"normalization is {method!r}; use one of {', '.join(NORMALIZATIONS)}.")


def resample(volume: np.ndarray, shape: tuple[int, int, int], order: int = 1) -> np.ndarray:
    """Resample one (D, H, W) volume to ``shape`` with spline interpolation of ``order`` (1 = linear).

    The one resampling of the lab: dataset preprocessing and saliency maps both
    use it. Both grids span the same field of view (``grid_mode``: voxels are
    cells covering it, not points at its corners).
    """
    from scipy import ndimage

    volume = np.asarray(volume, dtype=np.float32)
    if volume.shape == tuple(shape):
        return volume
    factors = [target / current for target, current in zip(shape, volume.shape)]
    resampled = ndimage.zoom(volume, factors, order=order, mode="nearest", grid_mode=True)
    # zoom can be off by one voxel from rounding; crop or pad to the exact shape.
    out = np.zeros(shape, dtype=np.float32)
    region = tuple(slice(0, min(a, b)) for a, b in zip(shape, resampled.shape))
    out[region] = resampled[region]
    return out
