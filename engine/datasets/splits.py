"""Train / validation / test splits: stratified by class, group-aware where samples share a source.

Never Keras' ``validation_split``: it takes the last rows of the arrays, and with
class-sorted data the validation set then holds a single class.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
# A dataset's predefined split per sample (e.g. 3D MNIST's test set, MedMNIST's three):
# the index into SPLIT_NAMES, or UNASSIGNED for samples that go to the training pool.
UNASSIGNED = -1


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
    predefined: np.ndarray | None = None,
) -> Splits:
    """Stratified (and, with shared groups, group-aware) train / val / test indices.

    ``predefined`` (codes into SPLIT_NAMES per sample, UNASSIGNED for the training
    pool) keeps a published split as given: its test set is the test split and its
    validation set the validation split; a part it leaves out is carved from the
    training pool, stratified and group-aware, at the fraction of all samples asked for.
    """
    labels = np.asarray(labels)
    indices = np.arange(len(labels))
    groups = None if groups is None else np.asarray(groups)
    if predefined is not None and np.any(np.asarray(predefined) != UNASSIGNED):
        return _predefined_splits(labels, val_fraction, test_fraction, seed, groups, class_names,
                                  np.asarray(predefined))
    try:
        rest, test = _split_off(indices, labels, groups, test_fraction, seed)
        rest_groups = None if groups is None else groups[rest]
        train, val = _split_off(rest, labels[rest], rest_groups, val_fraction / (1.0 - test_fraction), seed + 1)
    except ValueError as e:
        name, count = _smallest_class(labels, class_names)
        raise DataError(
            f"Cannot split {len(labels)} samples into stratified train, validation and test sets: class "
            f"{name!r} has only {count} samples ({e}). Add samples or lower the validation "
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


def make_fold_splits(
    labels: np.ndarray,
    folds: int,
    fold: int,
    test_fraction: float,
    seed: int = 0,
    groups: np.ndarray | None = None,
    class_names: list[str] | None = None,
    predefined: np.ndarray | None = None,
) -> Splits:
    """Train / val / test indices of fold ``fold`` of a ``folds``-fold cross-validation.

    The test split is held out once, before folding, exactly as ``make_splits``
    holds it out (a predefined test set is kept), so every fold of a group is
    evaluated on the same test samples and no test sample is ever trained on. The
    rest is cut into ``folds`` folds by scikit-learn: ``StratifiedKFold`` (each
    fold's count of every class within one sample of the whole's share), or
    ``StratifiedGroupKFold`` when samples share groups (no group in two folds;
    class counts then balanced as closely as whole groups allow). The seed fixes
    the assignment, so trials of a sweep with the same seed see the same folds
    and can be compared fold by fold (a paired comparison).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = np.asarray(labels)
    indices = np.arange(len(labels))
    groups = None if groups is None else np.asarray(groups)
    if predefined is not None and np.any(np.asarray(predefined) == SPLIT_NAMES.index("test")):
        test = indices[np.asarray(predefined) == SPLIT_NAMES.index("test")]
        rest = np.setdiff1d(indices, test)
    else:
        try:
            rest, test = _split_off(indices, labels, groups, test_fraction, seed)
        except ValueError as e:
            raise _split_error(labels, class_names, "a stratified test set", e) from e
    rest_groups = None if groups is None else groups[rest]
    if _has_shared_groups(rest_groups):
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter, rest_groups = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), None
    try:
        assignment = list(splitter.split(rest, labels[rest], rest_groups))
    except ValueError as e:
        raise _split_error(labels[rest], class_names, f"{folds} stratified folds", e) from e
    train, val = assignment[fold]
    splits = Splits(np.sort(rest[train]), np.sort(rest[val]), np.sort(test))
    for name in SPLIT_NAMES:
        if len(getattr(splits, name)) == 0:
            raise DataError(f"The {name} split of fold {fold} is empty with {len(labels)} samples; add samples or "
                            "use fewer folds.")
    return splits


def _smallest_class(labels: np.ndarray, class_names, minlength: int = 0) -> tuple[str, int]:
    """The name and sample count of the rarest class in ``labels`` (a class with none counts when
    ``minlength`` covers it): what the split sentences blame."""
    counts = np.bincount(labels, minlength=minlength)
    smallest = int(np.argmin(counts))
    return (class_names[smallest] if class_names else str(smallest)), int(counts[smallest])


def _split_error(labels: np.ndarray, class_names, what: str, error: Exception) -> DataError:
    name, count = _smallest_class(labels, class_names)
    return DataError(
        f"Cannot cut {len(labels)} samples into {what}: class {name!r} has only {count} samples "
        f"({error}). Add samples or use fewer folds."
    )


def _predefined_splits(labels, val_fraction, test_fraction, seed, groups, class_names, predefined) -> Splits:
    indices = np.arange(len(labels))
    parts = {name: indices[predefined == code] for code, name in enumerate(SPLIT_NAMES)}
    pool = np.sort(np.concatenate([parts["train"], indices[predefined == UNASSIGNED]]))
    for name, fraction, offset in (("test", test_fraction, 0), ("val", val_fraction, 1)):
        if len(parts[name]):
            continue
        # The fraction is of all samples; the pool is smaller than that.
        share = min(0.5, fraction * len(labels) / max(1, len(pool)))
        pool_groups = None if groups is None else groups[pool]
        try:
            pool, parts[name] = _split_off(pool, labels[pool], pool_groups, share, seed + offset)
        except ValueError as e:
            label, count = _smallest_class(labels[pool], class_names, minlength=int(labels.max()) + 1)
            raise DataError(
                f"Cannot carve a stratified {name} split out of the {len(pool)} predefined training samples: "
                f"class {label!r} has only {count} of them ({e}). Add samples or lower the "
                f"{'validation' if name == 'val' else 'test'} fraction."
            ) from e
    splits = Splits(np.sort(pool), np.sort(parts["val"]), np.sort(parts["test"]))
    for name in SPLIT_NAMES:
        if len(getattr(splits, name)) == 0:
            raise DataError(f"The predefined {name} split is empty; give it samples in the split column.")
    return splits


# ------------------------------------------------------ a config's folds and seeds
# Cross-validation and repeated seeds: one config in, the configs of its group's runs out. Pure
# functions of a RunConfig (no store, no jobs), so jobs.launch, the sweeps and the CLI expand a config
# the same way before queueing it; the fold's indices are then drawn by make_fold_splits above.

CV_PREFIX = "cv"
SEEDS_PREFIX = "seeds"


def new_group_id(prefix: str) -> str:
    """A fresh group id such as "cv-3fa9c1" (random: launchers in separate processes need no counter)."""
    return f"{prefix}-{secrets.token_hex(3)}"


def is_cross_validation(config: RunConfig) -> bool:
    """A config that asks for k folds without naming one: launching it queues one run per fold."""
    return bool(config.data.folds) and config.data.fold is None


def fold_configs(config: RunConfig) -> list[RunConfig]:
    """One config per fold (data.fold = 0..k-1, named "<name> fold i/k"); ``[config]`` without folds."""
    if not is_cross_validation(config):
        return [config]
    configs = []
    for fold in range(config.data.folds or 0):
        copy = config.copy()
        copy.data.fold = fold
        if config.name:
            copy.name = f"{config.name} fold {fold + 1}/{config.data.folds}"
        configs.append(copy)
    return configs


def seed_configs(config: RunConfig, repeats: int) -> list[RunConfig]:
    """The config repeated over seeds seed, seed+1, ... (each expanded into its folds, if any)."""
    configs = []
    for offset in range(max(1, int(repeats))):
        copy = config.copy()
        copy.training.seed = config.training.seed + offset
        if config.name and repeats > 1:
            copy.name = f"{config.name} seed {copy.training.seed}"
        configs.extend(fold_configs(copy))
    return configs
