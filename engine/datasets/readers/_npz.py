"""NPZ: the MedMNIST 3D layout (train/val/test images and labels) or generic x / y arrays.

Always ``allow_pickle=False``: an upload must never run code when it is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers import _arrays
from engine.datasets.readers.base import Scan
from engine.errors import DataError

MEDMNIST_SPLITS = {"train": "train", "val": "val", "test": "test"}


def scan(path: Path, options: Any) -> Scan:
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {name: archive[name] for name in archive.files}  # each access reads the member again
        archive.close()
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path.name} is not a readable NumPy .npz file without pickled objects ({e}).") from e
    shapes = {name: array.shape for name, array in arrays.items()}
    result = Scan(format="npz", candidates=[])
    x_key, y_key = getattr(options, "x_key", None), getattr(options, "y_key", None)
    splits = [split for split in MEDMNIST_SPLITS if f"{split}_images" in arrays and f"{split}_labels" in arrays]
    if x_key is None and y_key is None and splits:
        result.layout = "medmnist"
        for split in splits:
            labels = _arrays.label_strings(arrays[f"{split}_labels"], f"{path.name}:{split}_labels", result.notes)
            result.candidates += _arrays.candidates(path.name, f"{split}_images", arrays[f"{split}_images"], labels,
                                                    MEDMNIST_SPLITS[split])
        return result
    if not arrays:
        raise DataError(f"{path.name} holds no arrays.")
    result.layout = "arrays"
    x_name = _arrays.choose(shapes, x_key, _arrays.VOLUME_NAMES, "volumes", "x_key (--x-key)", path.name,
                            _arrays.looks_like_volumes)
    y_name = _arrays.choose(shapes, y_key, _arrays.LABEL_NAMES, "labels", "y_key (--y-key)", path.name,
                            lambda shape: _arrays.looks_like_labels(shape) and shape[:1] == shapes[x_name][:1])
    labels = _arrays.label_strings(arrays[y_name], f"{path.name}:{y_name}", result.notes)
    result.candidates = _arrays.candidates(path.name, x_name, arrays[x_name], labels, None)
    return result
