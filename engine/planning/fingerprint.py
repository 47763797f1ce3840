"""What a plan is decided from: the dataset's fingerprint and the machine's.

The dataset fingerprint is nnU-Net's idea for classification: sizes, voxel
spacings, intensities, modality, class balance and sample count, read from the
registry and from a sample of the volumes (never all of them). The machine's
is the memory a run may use (a GPU's, else the free RAM), whether there is a
GPU, and whether the CPU has bfloat16 instructions. Plain NumPy: no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import datasets
from engine.machine import execution, memory
from engine.datasets.preprocess import HU_LIKE_HIGH, HU_LIKE_LOW, foreground_mask

# Volumes read for the intensity statistics (evenly spaced over the dataset).
INTENSITY_SAMPLES = 24
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class DatasetFingerprint:
    dataset: str
    options: dict[str, Any]  # the resolved knobs of a built-in ({} for an import)
    imported: bool
    num_samples: int
    num_classes: int
    class_names: list[str]
    class_counts: list[int]
    volume_shape: list[int]  # (D, H, W, C) as stored
    spacing: list[float] | None  # median voxel spacing in mm (D, H, W) as the headers told; None when unknown
    modality: str | None  # "CT", "MR" or None
    modality_source: str  # how the modality was found, in words
    intensity: dict[str, float]  # of the sampled volumes as stored: p1, p99, mean, std, foreground_share
    preprocessing: dict[str, Any]  # what the import already did (window, clip, normalisation, shape); {} for built-ins
    predefined_splits: dict[str, int]  # the dataset's own split sizes ({} when none)
    has_groups: bool

    @property
    def imbalance(self) -> float:
        """The largest class count over the smallest (inf when a class is empty)."""
        smallest = min(self.class_counts)
        return math.inf if smallest == 0 else max(self.class_counts) / smallest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MachineFingerprint:
    device: str  # "GPU <name>" or "CPU (system memory)"
    gpu: bool
    memory_bytes: int | None  # the GPU's memory, else the free RAM; None when unknown
    bfloat16_cpu: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_ram(meminfo: Path = MEMINFO) -> int | None:
    """MemAvailable from /proc/meminfo in bytes (what can be allocated without swapping); None elsewhere."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine() -> MachineFingerprint:
    device, total = memory.device_memory()
    gpu = device.startswith("GPU")
    free = total if gpu or memory.MEMORY_ENV in device else (available_ram() or total)
    return MachineFingerprint(
        device=device, gpu=gpu, memory_bytes=free,
        bfloat16_cpu=bool(execution.cpu_flags() & set(execution.BF16_CPU_FLAGS)),
    )


def _median_spacing(info: dict[str, Any]) -> list[float] | None:
    """The median spacing the headers told, when the stored voxels still have it (not resampled at import)."""
    if (info.get("preprocessing") or {}).get("shape"):
        return None
    spacings = [s for s in info.get("spacings") or [] if len(s) >= 3]
    if not spacings:
        return None
    return [float(v) for v in np.median(np.asarray([s[:3] for s in spacings], dtype=float), axis=0)]


def _intensity(x: np.ndarray) -> dict[str, float]:
    picks = np.unique(np.linspace(0, len(x) - 1, min(INTENSITY_SAMPLES, len(x))).astype(int))
    volumes = np.stack([np.asarray(x[int(i)], dtype=np.float32) for i in picks])
    finite = volumes[np.isfinite(volumes)]
    p1, p99 = np.percentile(finite, [1.0, 99.0])
    share = float(np.mean([foreground_mask(volume).mean() for volume in volumes]))
    return {"p1": float(p1), "p99": float(p99), "mean": float(finite.mean()), "std": float(finite.std()),
            "min": float(finite.min()), "max": float(finite.max()), "foreground_share": share}


def _modality(info: dict[str, Any], intensity: dict[str, float]) -> tuple[str | None, str]:
    recorded = info.get("modality")
    if recorded in ("CT", "MR"):
        source = "the DICOM headers" if info.get("imported") else "the built-in dataset's description"
        return recorded, f"{recorded} ({source})"
    window = (info.get("preprocessing") or {}).get("window")
    if window:
        return "CT", f"CT (the import applied the CT window {window})"
    value_range = info.get("value_range") or [intensity["min"], intensity["max"]]
    if value_range[0] <= HU_LIKE_LOW and value_range[1] >= HU_LIKE_HIGH:
        return "CT", (f"CT-like (values {value_range[0]:.4g} to {value_range[1]:.4g} look like Hounsfield units)")
    return None, "unknown (no header names it and the values are not Hounsfield-like)"


def dataset(name: str, options: dict[str, Any] | None = None) -> DatasetFingerprint:
    """The fingerprint of ``name`` with these knobs (a built-in is generated when not cached yet)."""
    info = datasets.dataset_info(name, options)
    loaded = datasets.load_dataset(name, options)
    intensity = _intensity(loaded.x)
    modality, source = _modality(info, intensity)
    predefined = {split: int(size) for split, size in (info.get("splits") or {}).items() if split in ("val", "test")}
    return DatasetFingerprint(
        dataset=name, options=dict(loaded.options), imported=bool(info.get("imported")),
        num_samples=len(loaded), num_classes=loaded.num_classes, class_names=list(loaded.class_names),
        class_counts=[int(c) for c in loaded.class_counts()], volume_shape=list(loaded.volume_shape),
        spacing=_median_spacing(info), modality=modality, modality_source=source, intensity=intensity,
        preprocessing=dict(info.get("preprocessing") or {}), predefined_splits=predefined,
        has_groups=loaded.groups is not None,
    )


__all__ = ["DatasetFingerprint", "MachineFingerprint", "available_ram", "dataset", "machine"]
