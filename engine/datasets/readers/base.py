"""Shared pieces of the readers: what a reader returns (Volume, Candidate, Scan) and file helpers.

A module of its own so the per-format readers and the package that dispatches to them never
import each other in a circle.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.errors import DataError

FORMATS = ("auto", "dicom", "nifti", "hdf5", "npz")
ARRAY_FORMATS = ("hdf5", "npz")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
NPZ_SUFFIXES = (".npz",)
# Files that sit next to scans and are not samples: never reported as skipped.
SIDECAR_SUFFIXES = (".csv", ".tsv", ".txt", ".md", ".json", ".xml", ".pdf", ".xlsx", ".xls")

# Import caps, checked against what the headers declare BEFORE any voxel is read, so a tiny hostile file
# (a 1 KB NIfTI header claiming 1200^3 voxels, an .npz claiming 100 GB) is refused without allocating.
# One volume: 256 Mi voxels (e.g. a 512 x 512 x 1024 CT), 1 GiB as float32: real whole-body CT series fit.
MAX_VOLUME_VOXELS = 256 * 1024**2
# Arrays an HDF5 / NPZ reader holds in memory at once (NPZ members are read whole; HDF5 labels).
MAX_ARRAY_BYTES = 1024**3
# Declared uncompressed bytes per stored byte (an .nii.gz, an .npz member, an uploaded zip's member):
# more is a decompression bomb. Scans compress 2-20 times.
MAX_COMPRESSION_RATIO = 200.0
# Below this many declared bytes the ratio is not checked (tiny, mostly empty test volumes compress well).
RATIO_CHECKED_ABOVE_BYTES = 1024 * 1024
# A volume has at least this many slices along every axis: fewer is one image (or two), not a volume.
MIN_SLICES = 3


def compression_problem(info: zipfile.ZipInfo, max_ratio: float) -> str | None:
    """A zip member (of an uploaded zip, or an .npz) that expands more than ``max_ratio`` times: a zip bomb."""
    if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(1, info.compress_size):
        return (f"{info.filename!r} is compressed {info.file_size / max(1, info.compress_size):,.0f} times, "
                f"more than {max_ratio:g} (a zip bomb)")
    return None


def size_problem(shape: tuple[int, ...], itemsize: int, stored_bytes: int | None = None,
                 per_volume: bool = True) -> str | None:
    """Why declared ``shape`` must not be read (over the caps, or a decompression bomb), or None."""
    voxels = 1
    for n in shape:
        voxels *= max(0, int(n))
    declared = voxels * max(1, int(itemsize))
    listed = "x".join(str(int(n)) for n in shape)
    if per_volume and voxels > MAX_VOLUME_VOXELS:
        return (f"declares {listed} = {voxels:,} voxels, more than the {MAX_VOLUME_VOXELS:,} an import reads per "
                "volume; it was not read")
    if not per_volume and declared > MAX_ARRAY_BYTES:
        return (f"declares an array of {listed} ({declared:,} bytes), more than the {MAX_ARRAY_BYTES:,} an import "
                "holds in memory; it was not read")
    if stored_bytes is not None and declared > RATIO_CHECKED_ABOVE_BYTES and declared > MAX_COMPRESSION_RATIO * max(1, stored_bytes):
        return (f"declares {declared:,} bytes stored in {stored_bytes:,} (compressed {declared / max(1, stored_bytes):,.0f} "
                f"times, more than {MAX_COMPRESSION_RATIO:g}: a decompression bomb or a damaged file); it was not read")
    return None


@dataclass
class Volume:
    voxels: np.ndarray  # (D, H, W, C) float32
    affine: np.ndarray | None = None  # voxel index -> RAS world coordinates, when the format has one


@dataclass
class Candidate:
    """One sample as the headers describe it, before its voxels are read."""

    path: str  # shown to people: relative to the source, e.g. "AD/sub-01.nii.gz" or "x.h5:X_train[3]"
    read: Callable[[], Volume]
    ids: tuple[str, ...] = ()  # what a labels CSV may call this sample, most specific first
    label: str | None = None  # from the file (arrays) or the class folder
    group: str | None = None  # e.g. DICOM PatientID
    split: str | None = None  # predefined split given by the file's layout
    shape: tuple[int, ...] | None = None  # (D, H, W) when the headers tell
    spacing: tuple[float, ...] | None = None  # voxel size in mm when the headers tell
    series: str | None = None  # the DICOM series chosen for this sample
    modality: str | None = None  # DICOM Modality (CT, MR, ...) when the headers tell; None for other formats
    orientation: str | None = None  # axis codes of (D, H, W) in world space, e.g. "RAS" or "LPS" (nibabel's aff2axcodes)


@dataclass
class Scan:
    format: str
    candidates: list[Candidate]
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why
    notes: list[str] = field(default_factory=list)
    layout: str = ""  # e.g. "3d-mnist", "medmnist", "arrays", "files"
    applied: Counter = field(default_factory=Counter)  # intensity transform -> samples it is applied to (DICOM)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def intensity_notes(applied: Counter) -> list[str]:
    """One sentence per intensity transform applied, with how many samples it touched."""
    said = {
        "modality LUT": "the modality LUT (pydicom's apply_modality_lut) was applied",
        "rescale slope / intercept": "RescaleSlope / RescaleIntercept were applied (for CT: Hounsfield units)",
        "MONOCHROME1 inverted": ("MONOCHROME1 images were inverted within their stored range, so that a higher "
                                 "value is brighter in every sample, like MONOCHROME2"),
        "DoseGridScaling": "DoseGridScaling was applied (RT dose in Gy)",
    }
    return [f"DICOM intensities: {text} in {applied[name]} sample{'s' if applied[name] != 1 else ''}."
            for name, text in said.items() if applied.get(name)]


def has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in suffixes)


def is_dicom_file(path: Path) -> bool:
    """A DICOM file by its 'DICM' preamble, or by its .dcm extension (some writers omit the preamble)."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def walk_files(root: Path, skipped: dict[str, str], ignore: tuple[Path, ...] = ()) -> list[Path]:
    """Every regular file under ``root`` (sorted, hidden ones left out); links out of ``root`` are skipped."""
    real_root = root.resolve()
    files: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name != "__MACOSX")
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                skipped[relative(path, root)] = "is a symbolic link to a file outside the import folder"
                continue
            if path.is_file() and path.resolve() not in ignore:
                files.append(path)
    return files


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def detect_format(source: Path) -> str:
    """The format of a file or folder, by extension and, for DICOM, by content."""
    if source.is_file():
        if has_suffix(source, HDF5_SUFFIXES):
            return "hdf5"
        if has_suffix(source, NPZ_SUFFIXES):
            return "npz"
        if has_suffix(source, NIFTI_SUFFIXES):
            return "nifti"
        if is_dicom_file(source):
            return "dicom"
        raise DataError(
            f"{source.name} is not a DICOM, NIfTI (.nii, .nii.gz), HDF5 (.h5) or NumPy (.npz) file; "
            "give a folder of scans or one of those files."
        )
    counts = {"dicom": 0, "nifti": 0, "hdf5": 0, "npz": 0}
    for path in walk_files(source, {}):
        if has_suffix(path, NIFTI_SUFFIXES):
            counts["nifti"] += 1
        elif has_suffix(path, HDF5_SUFFIXES):
            counts["hdf5"] += 1
        elif has_suffix(path, NPZ_SUFFIXES):
            counts["npz"] += 1
        elif not has_suffix(path, SIDECAR_SUFFIXES) and is_dicom_file(path):
            counts["dicom"] += 1
    found = [name for name, count in counts.items() if count]
    if not found:
        raise DataError(
            f"No DICOM, NIfTI, HDF5 or NPZ files were found in {source.name}; check the folder."
        )
    if len(found) > 1:
        listed = ", ".join(f"{counts[name]} {name}" for name in found)
        raise DataError(f"{source.name} holds several formats ({listed}); choose one with format (--format).")
    return found[0]


def array_file(source: Path, fmt: str) -> Path:
    """The one HDF5 / NPZ file a source names (the file itself, or the only one in a folder)."""
    if source.is_file():
        return source
    suffixes = HDF5_SUFFIXES if fmt == "hdf5" else NPZ_SUFFIXES
    files = [path for path in walk_files(source, {}) if has_suffix(path, suffixes)]
    if len(files) != 1:
        names = ", ".join(relative(path, source) for path in files) or "none"
        raise DataError(
            f"An {fmt.upper()} import reads one file, and {source.name} holds {len(files)} ({names}); "
            "give the path of the file."
        )
    return files[0]


