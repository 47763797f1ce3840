"""NIfTI (.nii, .nii.gz) through nibabel: one file per sample, scaling (scl_slope/inter) applied.

The header is checked before any voxel is read: a volume over the import cap, an
uncompressed file shorter than its header says, or a .nii.gz that would expand
more than MAX_COMPRESSION_RATIO times is refused with a sentence. Each candidate
carries its axis codes (nibabel's aff2axcodes), so the importer can say which
orientations it found and what reorienting did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers.base import (
    MIN_SLICES, NIFTI_SUFFIXES, SIDECAR_SUFFIXES, Candidate, Scan, Volume, has_suffix, relative, size_problem,
    walk_files,
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
            axes = nibabel.aff2axcodes(image.affine)
            codes = "".join(axes) if None not in axes else None
        except Exception as e:  # nibabel raises many types for a damaged header
            result.skipped[shown] = f"is not a readable NIfTI file ({type(e).__name__}: {e})"
            continue
        problem = _shape_problem(shown, shape, volume_index) or _size_problem(path, image, shape)
        if problem:
            result.skipped[shown] = problem
            continue
        folder = path.parent.name if path.parent != root and not root.is_file() else None
        result.candidates.append(Candidate(
            path=shown, read=_reader(path, shown, volume_index), ids=(stem(path),) + ((folder,) if folder else ()),
            shape=shape[:3], spacing=zooms, orientation=codes,
        ))
    return result


def _size_problem(path: Path, image, shape: tuple[int, ...]) -> str | None:
    """The volume the header declares, against the caps and the file's size (before anything is read)."""
    itemsize = int(image.get_data_dtype().itemsize)
    one_volume = shape[:3]
    stored = path.stat().st_size
    compressed = path.name.lower().endswith(".gz")
    problem = size_problem(one_volume, itemsize, stored if compressed else None)
    if problem:
        return problem
    if not compressed:
        total = itemsize
        for n in shape:
            total *= n
        offset = int(image.header.get("vox_offset", 352) or 352)
        if offset + total > stored:
            return (f"declares {'x'.join(map(str, shape))} voxels ({total:,} bytes) but the file holds "
                    f"{stored:,} bytes: truncated or a damaged header; it was not read")
    return None


def _shape_problem(shown: str, shape: tuple[int, ...], volume_index: int | None) -> str | None:
    extra = [n for n in shape[3:]]
    if len(shape) < 3 or (len(shape) == 3 and shape[2] == 1):
        return f"has shape {shape}: a 2D image, not a volume"
    if min(shape[:3]) < MIN_SLICES:
        return f"has shape {shape}: fewer than {MIN_SLICES} slices along an axis is not a volume"
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
