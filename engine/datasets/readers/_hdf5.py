"""HDF5: the 3D MNIST file as published, or named arrays of volumes and labels (h5py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.datasets.readers import _arrays
from engine.datasets.readers.base import Scan
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
        shapes: dict[str, tuple[int, ...]] = {}
        handle.visititems(lambda name, item: shapes.__setitem__(name, item.shape) if isinstance(item, h5py.Dataset) else None)
        result = Scan(format="hdf5", candidates=[], closers=[handle.close])
        x_key, y_key = getattr(options, "x_key", None), getattr(options, "y_key", None)
        if x_key is None and y_key is None and all(k in shapes for pair in MNIST3D_KEYS.values() for k in pair):
            result.layout = "3d-mnist"
            for split, (x_name, y_name) in MNIST3D_KEYS.items():
                labels = _arrays.label_strings(handle[y_name][()], f"{path.name}:{y_name}", result.notes)
                result.candidates += _arrays.candidates(path.name, x_name, handle[x_name], labels, split)
            return result
        result.layout = "arrays"
        x_name = _arrays.choose(shapes, x_key, _arrays.VOLUME_NAMES, "volumes", "x_key (--x-key)", path.name,
                                _arrays.looks_like_volumes)
        y_name = _arrays.choose(shapes, y_key, _arrays.LABEL_NAMES, "labels", "y_key (--y-key)", path.name,
                                lambda shape: _arrays.looks_like_labels(shape) and shape[0] == shapes[x_name][0])
        labels = _arrays.label_strings(handle[y_name][()], f"{path.name}:{y_name}", result.notes)
        result.candidates = _arrays.candidates(path.name, x_name, handle[x_name], labels, None)
        return result
    except BaseException:
        handle.close()
        raise
