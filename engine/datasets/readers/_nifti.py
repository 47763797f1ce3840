"""NIfTI (.nii, .nii.gz) through nibabel: one file per sample, scaling (scl_slope/inter) applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers.base import (
    NIFTI_SUFFIXES, SIDECAR_SUFFIXES, Candidate, Scan, Volume, has_suffix, relative, walk_files,
)
from engine.errors import DataError


def stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def scan(root: Path, options: Any, ignore: tuple[Path, ...] = ()) -> Scan:
    import nibabel

    result = Scan(format="nifti", candidates=[], layout="files")
    volume_index = getattr(options, "volume_index", None)
    files = [root] if root.is_file() else walk_files(root, result.skipped, ignore)
    for path in files:
        shown = path.name if root.is_file() else relative(path, root)
        if not has_suffix(path, NIFTI_SUFFIXES):
            if not has_suffix(path, SIDECAR_SUFFIXES):
                result.skipped[shown] = "is not a NIfTI file (.nii or .nii.gz)"
            continue
        try:
            image = nibabel.load(path)
            shape = tuple(int(n) for n in image.shape)
            zooms = tuple(round(float(z), 4) for z in image.header.get_zooms()[:3])
        except Exception as e:  # nibabel raises many types for a damaged header
            result.skipped[shown] = f"is not a readable NIfTI file ({type(e).__name__}: {e})"
            continue
        problem = _shape_problem(shown, shape, volume_index)
        if problem:
            result.skipped[shown] = problem
            continue
        folder = path.parent.name if path.parent != root and not root.is_file() else None
        result.candidates.append(Candidate(
            path=shown, read=_reader(path, shown, volume_index), ids=(stem(path),) + ((folder,) if folder else ()),
            shape=shape[:3], spacing=zooms,
        ))
    return result


def _shape_problem(shown: str, shape: tuple[int, ...], volume_index: int | None) -> str | None:
    extra = [n for n in shape[3:]]
    if len(shape) < 3:
        return f"has shape {shape}, not a 3D volume"
    if all(n == 1 for n in extra):
        return None
    if len(extra) > 1 and any(n != 1 for n in extra[1:]):
        return f"has shape {shape}; only 3D and 4D images can be imported"
    if volume_index is None:
        return (f"is a 4D image of shape {shape}; choose which of its {extra[0]} volumes to import "
                "with volume_index (--volume-index)")
    if not 0 <= volume_index < extra[0]:
        return f"has {extra[0]} volumes (shape {shape}); volume_index {volume_index} is out of range"
    return None


def _reader(path: Path, shown: str, volume_index: int | None):
    def read() -> Volume:
        import nibabel

        try:
            image = nibabel.load(path)
            proxy = image.dataobj
            # Slicing the array proxy applies scl_slope / scl_inter, like get_fdata.
            if len(image.shape) > 3 and image.shape[3] > 1:
                voxels = np.asarray(proxy[:, :, :, volume_index], dtype=np.float32)
            else:
                voxels = np.asarray(proxy, dtype=np.float32).reshape(image.shape[:3])
        except Exception as e:
            raise DataError(f"cannot be read ({type(e).__name__}: {e})") from e
        return Volume(voxels[..., np.newaxis], affine=np.asarray(image.affine, dtype=np.float64))

    return read
