"""Shared by the HDF5 and NPZ readers: choosing the arrays and turning rows into candidates."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.datasets.readers.base import Candidate, Volume
from engine.errors import DataError

# Names a generic file may use for its volumes and labels, tried in this order.
VOLUME_NAMES = ("x", "X", "images", "volumes", "data")
LABEL_NAMES = ("y", "Y", "labels", "label", "targets")


def row_shape(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """(D, H, W, C) of one row of an array of ``shape`` (N, ...): flat cubes, 3D and 3D + channels."""
    row = tuple(int(n) for n in shape[1:])
    if len(row) == 1:
        edge = round(row[0] ** (1 / 3))
        if edge**3 != row[0]:
            raise DataError(
                f"{where} has rows of {row[0]} values, which is not a cube (like 4096 = 16^3); "
                "store the volumes as (N, D, H, W) or (N, D, H, W, C)."
            )
        return (edge, edge, edge, 1)
    if len(row) == 3:
        return (*row, 1)
    if len(row) == 4:
        return row
    raise DataError(
        f"{where} has shape {tuple(shape)}; volumes must be (N, D, H, W), (N, D, H, W, C) or flat cubes (N, D*H*W)."
    )


def label_strings(labels: np.ndarray, where: str, notes: list[str]) -> list[str]:
    """One class name per row: (N,) or (N, 1) values, or one-hot (N, K) rows (their argmax)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2:
        notes.append(f"{where} is one-hot ({labels.shape[1]} columns); each row's class is its largest column.")
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise DataError(f"{where} has shape {labels.shape}; labels must be (N,), (N, 1) or one-hot (N, K).")
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind == "S":
        return [value.decode("utf-8", "replace") for value in labels]
    return [str(value) for value in labels.tolist()]


def choose(names: dict[str, tuple[int, ...]], wanted: str | None, preferred: tuple[str, ...], kind: str,
           option: str, filename: str, fits) -> str:
    """The array holding the ``kind`` (volumes or labels): the one asked for, a usual name, or the only fit."""
    if wanted is not None:
        if wanted not in names:
            raise DataError(
                f"{filename} has no array named {wanted!r} for the {kind}; its arrays are {', '.join(names)}."
            )
        return wanted
    for name in preferred:
        if name in names and fits(names[name]):
            return name
    fitting = [name for name, shape in names.items() if fits(shape)]
    if len(fitting) == 1:
        return fitting[0]
    listed = ", ".join(f"{name} {tuple(names[name])}" for name in (fitting or names))
    raise DataError(
        f"Cannot tell which array of {filename} holds the {kind}; choose one of {listed} with {option}."
    )


def looks_like_volumes(shape: tuple[int, ...]) -> bool:
    return len(shape) in (4, 5) or (len(shape) == 2 and shape[1] >= 8 and round(shape[1] ** (1 / 3)) ** 3 == shape[1])


def looks_like_labels(shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 or (len(shape) == 2 and shape[1] <= 1000 and not looks_like_volumes(shape))


def candidates(filename: str, array_name: str, volumes: Any, labels: list[str], split: str | None) -> list[Candidate]:
    """One candidate per row of ``volumes`` (an ndarray or an h5py dataset, read a row at a time)."""
    where = f"{filename}:{array_name}"
    shape = row_shape(tuple(volumes.shape), where)
    if len(labels) != volumes.shape[0]:
        raise DataError(
            f"{where} holds {volumes.shape[0]} volumes but its labels hold {len(labels)}; they must match."
        )

    def reader(index: int):
        return lambda: Volume(np.asarray(volumes[index], dtype=np.float32).reshape(shape))

    return [
        Candidate(path=f"{where}[{index}]", read=reader(index), ids=(f"{array_name}[{index}]",),
                  label=labels[index], split=split, shape=shape[:3])
        for index in range(volumes.shape[0])
    ]
