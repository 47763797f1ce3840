"""Readers of the formats people bring: one private module per format behind ``scan``.

A reader turns a file or folder into *candidates*: one per sample, carrying what
the headers already tell (shape, spacing, label, group, predefined split) and a
``read`` callable that loads the voxels. The importer reads, checks and
preprocesses the candidates one at a time, so a folder larger than memory is
imported in bounded memory and a bad file is skipped, not fatal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.datasets.readers.base import (
    ARRAY_FORMATS,
    FORMATS,
    HDF5_SUFFIXES,
    MAX_ARRAY_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_VOLUME_VOXELS,
    MIN_SLICES,
    NIFTI_SUFFIXES,
    NPZ_SUFFIXES,
    SIDECAR_SUFFIXES,
    Candidate,
    Scan,
    Volume,
    array_file,
    detect_format,
    has_suffix,
    intensity_notes,
    is_dicom_file,
    relative,
    walk_files,
)
from engine.errors import DataError


def scan_arrays(source: Path, fmt: str, options: Any) -> Scan:
    """Candidates from an HDF5 or NPZ file: one per row, labels and splits from the file."""
    path = array_file(source, fmt)
    if fmt == "hdf5":
        from engine.datasets.readers import _hdf5

        return _hdf5.scan(path, options)
    from engine.datasets.readers import _npz

    return _npz.scan(path, options)


def scan_files(root: Path, fmt: str, options: Any, ignore: tuple[Path, ...] = ()) -> Scan:
    """Candidates from a folder of NIfTI files or DICOM series (every file under ``root``)."""
    if fmt == "nifti":
        from engine.datasets.readers import _nifti

        return _nifti.scan(root, options, ignore)
    if fmt == "dicom":
        from engine.datasets.readers import _dicom

        return _dicom.scan(root, options, ignore)
    raise DataError(f"format is {fmt!r}; a folder of scans is read as dicom or nifti.")


__all__ = [
    "ARRAY_FORMATS",
    "FORMATS",
    "HDF5_SUFFIXES",
    "MAX_ARRAY_BYTES",
    "MAX_COMPRESSION_RATIO",
    "MAX_VOLUME_VOXELS",
    "MIN_SLICES",
    "NIFTI_SUFFIXES",
    "NPZ_SUFFIXES",
    "SIDECAR_SUFFIXES",
    "Candidate",
    "Scan",
    "Volume",
    "array_file",
    "detect_format",
    "has_suffix",
    "intensity_notes",
    "is_dicom_file",
    "relative",
    "walk_files",
    "scan_arrays",
    "scan_files",
]
