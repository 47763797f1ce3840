"""Train / validation / test splits: stratified by class, group-aware where samples share a source.

Never Keras' ``validation_split``: it takes the last rows of the arrays, and with
class-sorted data the validation set then holds a single class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from engine.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Samples per class index 0..num_classes-1 (the one count every page and table shows)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=int(num_classes)).astype(int).tolist()


@dataclass
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def to_dict(self) -> dict[str, list[int]]:
        return {name: [int(i) for i in getattr(self, name)] for name in SPLIT_NAMES}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Splits":
        return cls(*(np.asarray(raw[name], dtype=np.int64) for name in SPLIT_NAMES))

    def class_counts(self, labels: np.ndarray, num_classes: int) -> dict[str, list[int]]:
        """Samples per class in each split, e.g. {"train": [40, 38], "val": [9, 8], ...}."""
        labels = np.asarray(labels)
        return {name: class_counts(labels[getattr(self, name)], num_classes) for name in SPLIT_NAMES}


def _has_shared_groups(groups: np.ndarray | None) -> bool:
    return groups is not None and len(np.unique(groups)) < len(groups)


def _split_off(indices, labels, groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, taken): about ``fraction`` of ``indices`` taken, stratified, whole groups only."""
    # Imported here: scikit-learn takes seconds to import and the dashboard lists datasets often.
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if not _has_shared_groups(groups):
        kept, taken = train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed)
        return np.sort(kept), np.sort(taken)
    # StratifiedGroupKFold keeps every group in one fold and balances classes across folds;
    # one fold of round(1 / fraction) is the held-out part.
    folds = max(2, int(round(1.0 / fraction)))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    kept, taken = next(splitter.split(indices, labels, groups))
    return np.sort(indices[kept]), np.sort(indices[taken])


def make_splits(
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
    groups: np.ndarray | None = None,
    class_names: list[str] | None = None,
) -> Splits:
    """Stratified (and, with shared groups, group-aware) train / val / test indices."""
    labels = np.asarray(labels)
    indices = np.arange(len(labels))
    groups = None if groups is None else np.asarray(groups)
    try:
        rest, test = _split_off(indices, labels, groups, test_fraction, seed)
        rest_groups = None if groups is None else groups[rest]
        train, val = _split_off(rest, labels[rest], rest_groups, val_fraction / (1.0 - test_fraction), seed + 1)
    except ValueError as e:
        counts = np.bincount(labels)
        smallest = int(np.argmin(counts))
        name = class_names[smallest] if class_names else str(smallest)
        raise DataError(
            f"Cannot split {len(labels)} samples into stratified train, validation and test sets: class "
            f"{name!r} has only {counts[smallest]} samples ({e}). Add samples or lower the validation "
            "and test fractions."
        ) from e
    splits = Splits(train, val, test)
    for name in SPLIT_NAMES:
        if len(getattr(splits, name)) == 0:
            raise DataError(
                f"The {name} split is empty with {len(labels)} samples; add samples or change the "
                "validation and test fractions."
            )
    return splits
