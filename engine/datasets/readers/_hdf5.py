"""HDF5: the 3D MNIST file as published, or named arrays of volumes and labels (h5py).

Shapes come from the dataset headers; rows are read one at a time when imported, the
labels array whole (checked against the import cap first). Kaggle's point-cloud files
(``train_point_clouds.h5``: one group per sample holding "img" and "points") are
refused in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.datasets.readers import _arrays
from engine.datasets.readers.base import Scan, size_problem
from engine.errors import DataError

# full_dataset_vectors.h5 of the Kaggle "3D MNIST" dataset: rows are flattened 16^3 volumes.
MNIST3D_KEYS = {"train": ("X_train", "y_train"), "test": ("X_test", "y_test")}


def scan(path: Path, options: Any) -> Scan:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path.name} is not a readable HDF5 file ({e}).") from e
    try:
        if _point_clouds(handle, h5py):
            raise DataError(
                f"{path.name}: this file holds point clouds (one group per sample), not voxel volumes; for 3D MNIST "
                "import full_dataset_vectors.h5 (the voxelised 16^3 version)."
            )
        shapes: dict[str, tuple[int, ...]] = {}
        handle.visititems(lambda name, item: shapes.__setitem__(name, item.shape) if isinstance(item, h5py.Dataset) else None)
        result = Scan(format="hdf5", candidates=[], closers=[handle.close])
        x_key, y_key = getattr(options, "x_key", None), getattr(options, "y_key", None)
        if x_key is None and y_key is None and all(k in shapes for pair in MNIST3D_KEYS.values() for k in pair):
            result.layout = "3d-mnist"
            for split, (x_name, y_name) in MNIST3D_KEYS.items():
                labels = _arrays.label_strings(_labels(handle, y_name, path.name), f"{path.name}:{y_name}", result.notes)
                result.candidates += _arrays.candidates(path.name, x_name, handle[x_name], labels, split)
            return result
        result.layout = "arrays"
        if x_key is None:
            _arrays.refuse_images(shapes, path.name)
        x_name = _arrays.choose(shapes, x_key, _arrays.VOLUME_NAMES, "volumes", "x_key (--x-key)", path.name,
                                _arrays.looks_like_volumes)
        y_name = _arrays.choose(shapes, y_key, _arrays.LABEL_NAMES, "labels", "y_key (--y-key)", path.name,
                                lambda shape: _arrays.looks_like_labels(shape) and shape[0] == shapes[x_name][0])
        labels = _arrays.label_strings(_labels(handle, y_name, path.name), f"{path.name}:{y_name}", result.notes)
        result.candidates = _arrays.candidates(path.name, x_name, handle[x_name], labels, None)
        return result
    except BaseException:
        handle.close()
        raise


def _point_clouds(handle, h5py) -> bool:
    """One group per sample holding a "points" array (Kaggle's train_point_clouds.h5), and no arrays at the top."""
    names = list(handle.keys())[:20]
    if not names or any(isinstance(handle.get(name, getlink=False), h5py.Dataset) for name in names):
        return False
    return all(isinstance(handle[name], h5py.Group) and "points" in handle[name] for name in names)


def _labels(handle, name: str, filename: str):
    """The labels array, read whole once its declared size is known to fit the cap."""
    dataset = handle[name]
    problem = size_problem(tuple(dataset.shape), dataset.dtype.itemsize, per_volume=False)
    if problem:
        raise DataError(f"{filename}: its labels array {name!r} {problem}.")
    return dataset[()]
