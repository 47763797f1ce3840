"""Intensity normalisation and resampling of volumes."""

from __future__ import annotations

import numpy as np

from engine.config import NORMALIZATIONS


def normalize(volumes: np.ndarray, method: str) -> np.ndarray:
    """Per-volume normalisation of a batch (N, D, H, W[, C]): "none", "minmax" to [0, 1], "zscore", or
    "zscore_fg" (the mean and standard deviation of each volume's foreground voxels only)."""
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
    if method == "zscore_fg":
        return np.stack([_zscore_over(volume, foreground_mask(volume)) for volume in volumes]) if len(volumes) \
            else volumes
    raise ValueError(f"normalization is {method!r}; use one of {', '.join(NORMALIZATIONS)}.")


# The foreground of a volume: voxels above this share of its robust range (2nd to 98th percentile) over the
# 2nd percentile, FSL BET's default rule for separating a head from the air around it.
FOREGROUND_FRACTION = 0.1
# A mask with fewer voxels than this share of the volume is not trusted: the whole volume is used instead.
MIN_FOREGROUND_SHARE = 0.01


def foreground_mask(volume: np.ndarray) -> np.ndarray:
    """Boolean mask of one volume's foreground: voxels above p2 + 0.1 x (p98 - p2) of the volume."""
    low, high = np.percentile(volume, [2.0, 98.0])
    mask = volume > low + FOREGROUND_FRACTION * (high - low)
    if mask.mean() < MIN_FOREGROUND_SHARE:
        return np.ones(volume.shape, dtype=bool)
    return mask


def _zscore_over(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The whole volume shifted and scaled by the mean and standard deviation of the voxels in ``mask``."""
    chosen = volume[mask]
    std = float(chosen.std())
    return ((volume - np.float32(chosen.mean())) / np.float32(std if std > 0 else 1.0)).astype(np.float32)


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


# CT windows in Hounsfield units: name -> (level, width). Voxels are clipped to
# [level - width/2, level + width/2] and scaled to [0, 1] (Radiopaedia's presets).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "bone": (600.0, 2800.0),
    "soft_tissue": (50.0, 400.0),
    "lung": (-600.0, 1500.0),
    "liver": (30.0, 150.0),
    "mediastinum": (50.0, 350.0),
}

CHANNEL_MODES = ("keep", "first", "mean")


def window(volume: np.ndarray, name: str) -> np.ndarray:
    """Clip to the CT window ``name`` (see CT_WINDOWS) and scale to [0, 1]."""
    if name not in CT_WINDOWS:
        raise ValueError(f"window is {name!r}; use one of {', '.join(CT_WINDOWS)}.")
    level, width = CT_WINDOWS[name]
    low = level - width / 2.0
    return (np.clip(np.asarray(volume, dtype=np.float32), low, low + width) - low) / np.float32(width)


def clip_percentiles(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip one volume to its own [low, high] percentiles (e.g. 0.5 and 99.5 tame scanner outliers)."""
    volume = np.asarray(volume, dtype=np.float32)
    bottom, top = np.percentile(volume, [low, high])
    return np.clip(volume, bottom, top)


def reorient_canonical(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Reorder and flip the first three axes of ``volume`` to RAS+ (nibabel's closest canonical).

    ``affine`` maps voxel indices to RAS world coordinates (NIfTI's convention;
    a DICOM reader flips LPS's first two rows). Trailing axes (channels) follow.
    """
    from nibabel import orientations

    orientation = orientations.io_orientation(np.asarray(affine, dtype=np.float64))
    return np.ascontiguousarray(orientations.apply_orientation(volume, orientation))


def select_channels(volume: np.ndarray, mode: str) -> np.ndarray:
    """A (D, H, W, C) volume with its channels kept, reduced to the first, or averaged into one."""
    if mode == "keep":
        return volume
    if mode == "first":
        return volume[..., :1]
    if mode == "mean":
        return volume.mean(axis=-1, keepdims=True, dtype=np.float32)
    raise ValueError(f"channels is {mode!r}; use one of {', '.join(CHANNEL_MODES)}.")


# ------------------------------------------------------------------ intensity defaults
# The CT window an import uses when none is chosen (soft tissue: most lesions and organs).
DEFAULT_CT_WINDOW = "soft_tissue"
# Values this low and this high in a sample read look like Hounsfield units (air is -1000, bone +1000).
HU_LIKE_LOW, HU_LIKE_HIGH = -500.0, 500.0
# Inputs whose absolute values reach past this are far from the unit scale a network's
# initialisation expects (the doctor's input-scale finding uses the same bound).
UNIT_SCALE_LIMIT = 10.0


def describe_window(name: str) -> str:
    level, width = CT_WINDOWS[name]
    return f"window {name} (level {level:g} HU, width {width:g} HU), scaled to [0, 1]"


def choose_intensity(modality: str | None, low: float | None, high: float | None) -> tuple[str | None, str, str]:
    """The intensity handling an import uses by default: (CT window or None, normalisation, why).

    CT (DICOM Modality CT, or Hounsfield-like values in a sample read) gets the
    soft-tissue window scaled to [0, 1]; MR a per-volume z-score (its values have no
    fixed unit); anything else a per-volume z-score when a sample's values lie far
    from unit scale, and is kept as read otherwise (e.g. 3D MNIST's [0, 1]).
    """
    seen = "" if low is None or high is None else f"values {low:.4g} to {high:.4g} in a sample read"
    if modality == "CT":
        return DEFAULT_CT_WINDOW, "none", f"CT (DICOM Modality CT): {describe_window(DEFAULT_CT_WINDOW)}"
    if modality == "MR":
        return None, "zscore", "MR (DICOM Modality MR): per-volume z-score"
    if low is not None and high is not None and low <= HU_LIKE_LOW and high >= HU_LIKE_HIGH:
        return DEFAULT_CT_WINDOW, "none", f"CT-like ({seen}, in Hounsfield units): {describe_window(DEFAULT_CT_WINDOW)}"
    if low is not None and high is not None and max(abs(low), abs(high)) > UNIT_SCALE_LIMIT:
        return None, "zscore", f"{seen}, far from unit scale: per-volume z-score"
    if seen:
        return None, "none", f"{seen}: kept as read"
    return None, "none", "kept as read (no sample could be read to choose)"


def describe_intensity(window_name: str | None, clip: tuple[float, float] | None, normalization: str) -> str:
    """The intensity handling chosen by hand, in the words the preview uses."""
    steps = []
    if window_name:
        steps.append(describe_window(window_name))
    if clip:
        steps.append(f"clipped to percentiles {clip[0]:g}-{clip[1]:g}")
    if normalization != "none":
        steps.append({"zscore": "per-volume z-score", "minmax": "per-volume min-max to [0, 1]",
                      "zscore_fg": "per-volume z-score over the foreground"}.get(normalization,
                                                                                                   normalization))
    return "as chosen: " + ("; ".join(steps) if steps else "kept as read")
