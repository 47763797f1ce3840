"""Shared by the HDF5 and NPZ readers: choosing the arrays and turning rows into candidates."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.datasets.readers.base import MIN_SLICES, Candidate, Volume, size_problem
from engine.errors import DataError

# Names a generic file may use for its volumes and labels, tried in this order.
VOLUME_NAMES = ("x", "X", "images", "volumes", "data")
LABEL_NAMES = ("y", "Y", "labels", "label", "targets")
# At most this many arrays are listed in a sentence that asks which one to use.
LISTED_ARRAYS = 8


def row_shape(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """(D, H, W, C) of one row of an array of ``shape`` (N, ...): flat cubes, 3D and 3D + channels.

    2D images are refused, each layout with its own sentence: (N, H, W) grey, (N, H, W, 3) colour
    (MedMNIST 2D, e.g. pathmnist's 28x28x3) and volumes thinner than MIN_SLICES along an axis.
    """
    row = tuple(int(n) for n in shape[1:])
    listed = "x".join(map(str, row))
    if len(row) == 1:
        edge = round(row[0] ** (1 / 3))
        if edge**3 != row[0]:
            raise DataError(
                f"{where} has rows of {row[0]} values, which is not a cube (like 4096 = 16^3); "
                "store the volumes as (N, D, H, W) or (N, D, H, W, C)."
            )
        shape4 = (edge, edge, edge, 1)
    elif len(row) == 2:
        raise DataError(f"{where} holds 2D images of {listed}, not volumes; a Conv3D model needs (N, D, H, W) volumes.")
    elif len(row) == 3 and row[2] in (3, 4) and min(row[:2]) > row[2]:
        raise DataError(
            f"{where} holds 2D colour images of {listed} (height x width x {'RGB' if row[2] == 3 else 'RGBA'}, like "
            "MedMNIST 2D's pathmnist), not volumes; import a 3D dataset (e.g. MedMNIST 3D's organmnist3d)."
        )
    elif len(row) == 3:
        shape4 = (*row, 1)
    elif len(row) == 4:
        shape4 = row
    else:
        raise DataError(
            f"{where} has shape {tuple(shape)}; volumes must be (N, D, H, W), (N, D, H, W, C) or flat cubes (N, D*H*W)."
        )
    if min(shape4[:3]) < MIN_SLICES:
        raise DataError(
            f"{where} holds volumes of {'x'.join(map(str, shape4[:3]))}: fewer than {MIN_SLICES} slices along an "
            "axis is not a volume."
        )
    problem = size_problem(shape4, 4)
    if problem:
        raise DataError(f"{where}: each row {problem}.")
    return shape4


def label_strings(labels: np.ndarray, where: str, notes: list[str]) -> list[str]:
    """One class name per row: (N,) or (N, 1) values, or one-hot (N, K) rows (their argmax).

    Rows that mark several columns (multi-label, like ChestMNIST's 14 findings) are refused: their
    argmax would silently keep one finding per sample.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2:
        marked = labels != 0
        one_hot = np.all(np.isin(labels, (0, 1))) and np.all(marked.sum(axis=1) == 1)
        if not one_hot:
            several = int(np.count_nonzero(marked.sum(axis=1) > 1))
            raise DataError(
                f"{where} has {labels.shape[1]} label columns and {several} of its {labels.shape[0]} rows mark more "
                "than one (multi-label, like ChestMNIST's 14 findings); a classifier here needs one class per sample: "
                "give an (N,) array of classes with y_key (--y-key)."
                if several else
                f"{where} has {labels.shape[1]} label columns that are not one-hot (each row must hold a single 1); "
                "give an (N,) array of classes with y_key (--y-key)."
            )
        notes.append(f"{where} is one-hot ({labels.shape[1]} columns); each row's class is its marked column.")
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
    shown = list(fitting or names)
    listed = ", ".join(f"{name} {tuple(names[name])}" for name in shown[:LISTED_ARRAYS])
    if len(shown) > LISTED_ARRAYS:
        listed += f" (and {len(shown) - LISTED_ARRAYS} more)"
    raise DataError(
        f"Cannot tell which array of {filename} holds the {kind}; choose one of {listed} with {option}."
    )


def refuse_images(shapes: dict[str, tuple[int, ...]], filename: str) -> None:
    """When no array looks like volumes but one holds 2D images ((N, H, W) or (N, H, W, 3)), say so."""
    if any(looks_like_volumes(shape) for shape in shapes.values()):
        return
    for name, shape in shapes.items():
        if len(shape) in (3, 4):
            row_shape(shape, f"{filename}:{name}")


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
