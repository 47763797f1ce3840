"""Datasets: the registry of built-ins and imported sets, loading through the disk cache, splits, preprocessing.

Plain NumPy / SciPy / scikit-learn (no TensorFlow), so the dashboard can list,
preview and validate datasets. Volumes come back as a read-only memory map of
shape (N, D, H, W, C), so a dataset larger than RAM is read in bounded memory.
Imported datasets (engine.datasets.importing) appear next to the built-ins in
every function here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import positive_class as positive
from engine.datasets import cache, imported
from engine.datasets.builtins import DATASETS, DatasetSpec, Option
from engine.datasets.importing import (
    ImportCancelled, ImportOptions, ImportPreview, ImportProgress, ImportResult, import_dataset, preview_import,
)
from engine.datasets.labels import NO_COLUMN, NO_LABELS_CSV
from engine.datasets.preprocess import CT_WINDOWS, normalize, resample
from engine.datasets.splits import Splits, class_counts
from engine.datasets.splits import make_fold_splits as _make_fold_splits
from engine.datasets.splits import make_splits as _make_splits
from engine.errors import ConfigError, Problem

__all__ = [
    "CT_WINDOWS",
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "ImportCancelled",
    "ImportOptions",
    "ImportPreview",
    "ImportProgress",
    "ImportResult",
    "NO_COLUMN",
    "NO_LABELS_CSV",
    "Option",
    "Splits",
    "allowed_import_roots",
    "check_import_path",
    "class_counts",
    "dataset_info",
    "dataset_names",
    "delete_imported",
    "may_change_imported",
    "extract_zip",
    "import_dataset",
    "list_datasets",
    "load_dataset",
    "make_fold_splits",
    "make_splits",
    "default_normalization",
    "normalize",
    "predefined_fractions",
    "preview_import",
    "resample",
    "resolve_options",
    "set_positive_class",
    "validate_dataset_name",
    "validate_options",
]


@dataclass
class Dataset:
    name: str
    x: np.ndarray  # (N, D, H, W, 1) float32, usually a read-only memory map
    y: np.ndarray  # (N,) int64 class indices
    groups: np.ndarray | None  # (N,) source / patient ids, or None when every sample stands alone
    sample_ids: np.ndarray  # (N,) stable ids: the row index in x
    class_names: list[str]
    fingerprint: str
    options: dict[str, Any]
    generation_seconds: float | None = None  # set when this call generated the data
    predefined_split: np.ndarray | None = None  # (N,) codes into splits.SPLIT_NAMES, -1 unassigned; imports only
    positive_class: str | None = None  # two classes: the one sensitivity and the threshold are about
    # The name of each group code (imports: the labels CSV's group or the DICOM PatientID); None: the codes.
    group_names: list[str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def group_name(self, code: int) -> str:
        """The name a person knows group ``code`` by (its code as text when the dataset names none)."""
        code = int(code)
        return self.group_names[code] if self.group_names is not None and 0 <= code < len(self.group_names) \
            else str(code)

    def group_labels(self) -> np.ndarray | None:
        """(N,) the group name of each sample (None when the dataset has no groups)."""
        if self.groups is None:
            return None
        return np.asarray([self.group_name(code) for code in np.asarray(self.groups)], dtype=object)

    @property
    def volume_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> list[int]:
        return class_counts(self.y, self.num_classes)


def dataset_names() -> list[str]:
    """The built-ins, then the imported datasets."""
    return list(DATASETS) + imported.names()


def _is_imported(name: str) -> bool:
    return name not in DATASETS and imported.exists(name)


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            [Problem("data.dataset", f"data.dataset is {name!r}; valid datasets are {', '.join(dataset_names())}.")]
        ) from None


def validate_options(name: str, options: dict[str, Any]) -> list[Problem]:
    """One problem (field, sentence) per bad option of dataset ``name`` (empty when all are fine)."""
    if _is_imported(name):
        return [
            Problem(f"data.options.{key}", f"data.options.{key} is not an option of {name}: an imported dataset has no options.")
            for key in options
        ]
    spec = _spec(name)
    problems = []
    for key, value in options.items():
        field_name = f"data.options.{key}"
        if key not in spec.options:
            problems.append(Problem(field_name, f"{field_name} is not an option of {name}; its options are {', '.join(spec.options)}."))
            continue
        problem = spec.options[key].problem(field_name, value)
        if problem:
            problems.append(Problem(field_name, problem))
    return problems


def resolve_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The defaults overlaid with ``options``; raises ConfigError for bad knobs."""
    options = dict(options or {})
    problems = validate_options(name, options)
    if problems:
        raise ConfigError(problems)
    if _is_imported(name):
        return {}
    resolved = _spec(name).defaults()
    for key, value in options.items():
        option = _spec(name).options[key]
        resolved[key] = int(value) if option.integer and value is not None else value
    return resolved


def dataset_info(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a dataset will look like with these options, without generating it."""
    if _is_imported(name):
        resolve_options(name, options)
        return imported.info(name)
    spec = _spec(name)
    resolved = resolve_options(name, options)
    edge = spec.volume_edge(resolved)
    class_names = spec.class_names(resolved)
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "num_classes": len(class_names),
        "class_names": class_names,
        "positive_class": _builtin_positive_class(spec, class_names),
        "volume_shape": [edge, edge, edge, 1],
        "num_samples": spec.sample_count(resolved),
        "modality": spec.modality,
        "default_options": spec.defaults(),
        "options": {key: option.describe() for key, option in spec.options.items()},
        "cached": cache.is_cached(name, cache.fingerprint(name, resolved)),
    }


def _builtin_positive_class(spec: DatasetSpec, class_names: list[str]) -> str | None:
    if len(class_names) != 2:
        return None
    return spec.positive_class if spec.positive_class in class_names else positive.guess(class_names)


def list_datasets() -> list[dict[str, Any]]:
    """The built-ins, then the imported datasets (their info carries ``"imported": True``)."""
    return [dataset_info(name) for name in DATASETS] + [imported.info(name) for name in imported.names()]


def load_dataset(name: str, options: dict[str, Any] | None = None) -> Dataset:
    """The dataset with these options, generated on first use and then read from the disk cache."""
    if _is_imported(name):
        resolve_options(name, options)
        return _load_imported(name)
    spec = _spec(name)
    resolved = resolve_options(name, options)
    key = cache.fingerprint(name, resolved)
    entry = cache.load(name, key)
    seconds = None
    if entry is None:
        started = time.perf_counter()
        x, y, groups = spec.generator(resolved)
        labels = {"y": y.astype(np.int64)}
        if groups is not None:
            labels["groups"] = groups.astype(np.int64)
        cache.save(name, key, x[..., np.newaxis], {"class_names": spec.class_names(resolved), "options": resolved},
                   **labels)
        seconds = time.perf_counter() - started
        entry = cache.load(name, key)
    return Dataset(
        name=name,
        x=entry["x"],
        y=entry["y"],
        groups=entry.get("groups"),
        sample_ids=np.arange(len(entry["y"]), dtype=np.int64),
        class_names=list(entry["meta"]["class_names"]),
        fingerprint=key,
        options=resolved,
        generation_seconds=seconds,
        positive_class=_builtin_positive_class(spec, list(entry["meta"]["class_names"])),
    )


def _load_imported(name: str) -> Dataset:
    entry = imported.load(name)
    manifest = entry["manifest"]
    return Dataset(
        name=name,
        x=entry["x"],
        y=entry["y"],
        groups=entry["groups"],
        sample_ids=np.arange(len(entry["y"]), dtype=np.int64),
        class_names=list(manifest["class_names"]),
        fingerprint=manifest["fingerprint"],
        options={},
        predefined_split=entry["split"],
        positive_class=imported.positive_class_of(manifest),
        group_names=imported.group_names(manifest, entry["groups"]),
    )


def make_splits(dataset: Dataset, val_fraction: float, test_fraction: float, seed: int = 0, *,
                use_predefined: bool = True) -> Splits:
    """Stratified train / val / test indices of ``dataset``; group-aware when samples share groups.

    A dataset's predefined splits (an import's test set, say) are kept as given, unless ``use_predefined``
    is False (config ``data.predefined_split``): then every sample is split stratified.
    """
    return _make_splits(
        dataset.y, val_fraction, test_fraction, seed=seed, groups=dataset.groups, class_names=dataset.class_names,
        predefined=dataset.predefined_split if use_predefined else None,
    )


def predefined_fractions(info: dict[str, Any]) -> dict[str, float]:
    """The validation and test shares a dataset's own split fixes (from ``dataset_info``): what a run uses for
    them whatever fraction it asks for ({} for a dataset without a predefined split)."""
    total = int(info.get("num_samples") or 0)
    sizes = info.get("splits") or {}
    return {name: round(int(sizes[name]) / total, 4) for name in ("val", "test") if total and sizes.get(name)}


def default_normalization(info: dict[str, Any]) -> tuple[str, str]:
    """The normalisation a run on this dataset starts from (``dataset_info``), and why: none when the import
    already scaled the intensities (never twice), a per-volume z-score when the values as imported lie far
    from unit scale, else the config's default."""
    from engine.config import DataConfig
    from engine.datasets.preprocess import UNIT_SCALE_LIMIT

    steps = info.get("preprocessing") or {}
    if steps.get("window") or steps.get("clip_percentiles") or steps.get("normalization") not in (None, "none"):
        done = ", ".join(f"{key} {value}" for key, value in steps.items()
                         if key in ("window", "clip_percentiles", "normalization") and value not in (None, "none"))
        return "none", f"the import already scaled the intensities ({done})"
    value_range = info.get("value_range")
    if value_range and max(abs(float(v)) for v in value_range) > UNIT_SCALE_LIMIT:
        return "zscore", (f"the values as imported span {float(value_range[0]):.4g} to {float(value_range[1]):.4g}, "
                          "far from unit scale")
    return DataConfig().normalization, "the dataset's values are near unit scale"


def make_fold_splits(dataset: Dataset, folds: int, fold: int, test_fraction: float, seed: int = 0, *,
                     use_predefined: bool = True) -> Splits:
    """Fold ``fold`` of a stratified, group-aware ``folds``-fold split of ``dataset`` (test held out once;
    a predefined test set is kept unless ``use_predefined`` is False)."""
    return _make_fold_splits(
        dataset.y, folds, fold, test_fraction, seed=seed, groups=dataset.groups, class_names=dataset.class_names,
        predefined=dataset.predefined_split if use_predefined else None,
    )


# The import entry points a Data page calls (engine.datasets.importing and .uploads hold the details).
def validate_dataset_name(name: str) -> str:
    """``name`` when it may name a new imported dataset; DataError stating the rule otherwise."""
    return imported.validate_name(name, list(DATASETS))


def set_positive_class(name: str, class_name: str) -> None:
    """Make ``class_name`` the positive class of the imported dataset ``name`` (runs launched later default to it)."""
    imported.set_positive_class(name, class_name)


def delete_imported(name: str, *, actor: str | None = None, demo_mode: bool | None = None) -> None:
    """Delete an imported dataset (never a built-in). ``actor``: the dashboard identity asking (None: the
    operator's CLI); on a hosted demo only the visitor who imported it may (``imported.check_owner``)."""
    imported.delete(name, actor, demo_mode)


def may_change_imported(name: str, actor: str | None, demo_mode: bool | None = None) -> bool:
    """Whether ``actor`` may delete or replace the imported dataset ``name`` (for the Data page's buttons)."""
    return imported.may_change(name, actor, demo_mode)


def extract_zip(zip_path, limits=None):
    """Extract an uploaded zip safely into a fresh folder and return it (see uploads.extract_zip)."""
    from engine.datasets import uploads

    return uploads.extract_zip(zip_path, limits or uploads.ZipLimits())


def allowed_import_roots():
    from engine.datasets import uploads

    return uploads.allowed_import_roots()


def check_import_path(path, demo_mode=None):
    """The resolved path when the dashboard may import from it (never on a hosted demo); DataError otherwise."""
    from engine.datasets import uploads

    return uploads.check_import_path(path, demo_mode)
