"""Datasets: the registry of built-ins and imported sets, loading through the disk cache, splits, preprocessing.

Plain NumPy / SciPy / scikit-learn (no TensorFlow), so the dashboard can list,
preview and validate datasets. Volumes come back as a read-only memory map of
shape (N, D, H, W, C), so a dataset larger than RAM is read in bounded memory.
Imported datasets (engine.datasets.importing) appear next to the built-ins in
every function here.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engine.datasets import cache, generators, imported
from engine.datasets.importing import (
    ImportCancelled, ImportOptions, ImportPreview, ImportProgress, ImportResult, import_dataset, preview_import,
)
from engine.datasets.preprocess import CT_WINDOWS, NORMALIZATIONS, normalize, resample
from engine.datasets.splits import Splits
from engine.datasets.splits import make_splits as _make_splits
from engine.errors import ConfigError

__all__ = [
    "CT_WINDOWS",
    "DATASETS",
    "NORMALIZATIONS",
    "Dataset",
    "DatasetSpec",
    "ImportCancelled",
    "ImportOptions",
    "ImportPreview",
    "ImportProgress",
    "ImportResult",
    "Option",
    "Splits",
    "allowed_import_roots",
    "check_import_path",
    "dataset_info",
    "dataset_names",
    "delete_imported",
    "extract_zip",
    "import_dataset",
    "list_datasets",
    "load_dataset",
    "make_splits",
    "normalize",
    "preview_import",
    "resample",
    "resolve_options",
    "validate_dataset_name",
    "validate_options",
]


@dataclass(frozen=True)
class Option:
    """One knob of a dataset: its default and allowed values."""

    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    integer: bool = False
    optional: bool = False  # None allowed (means "all" / "not set")

    def problem(self, field_name: str, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if self.choices is not None:
            if value not in self.choices:
                return f"{field_name} is {value!r}; it must be one of {', '.join(self.choices)}."
            return None
        kind = "a whole number" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            self.integer and not float(value).is_integer()
        ):
            return f"{field_name} is {value!r}; it must be {kind} between {self.minimum:g} and {self.maximum:g}."
        if not self.minimum <= value <= self.maximum:
            return f"{field_name} is {value!r}; it must be {kind} between {self.minimum:g} and {self.maximum:g}."
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "default": self.default, "help": self.help, "min": self.minimum, "max": self.maximum,
            "choices": list(self.choices) if self.choices else None, "integer": self.integer,
        }


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    description: str
    generator: Callable[[dict], generators.Generated]
    options: dict[str, Option]
    class_names: Callable[[dict], list[str]]
    volume_edge: Callable[[dict], int] = field(default=lambda options: int(options["size"]))

    def defaults(self) -> dict[str, Any]:
        return {name: option.default for name, option in self.options.items()}


def _seed_option() -> Option:
    return Option(0, "Seed of the generator: the same seed gives the same volumes.", 0, 2**31 - 1, integer=True)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="digits3d",
            title="3D digits (3D-MNIST style)",
            description=(
                "scikit-learn's 1,797 handwritten digits extruded into point clouds, randomly rotated and "
                "jittered, voxelised into 16^3; 10 classes. The source image is each sample's group."
            ),
            generator=generators.digits3d,
            options={
                "size": Option(16, "Edge of the cubic volume in voxels.", 8, 64, integer=True),
                "copies": Option(1, "Augmented copies per source digit (new rotation and jitter).", 1, 20, integer=True),
                "max_rotation_degrees": Option(20.0, "Largest random rotation about each axis.", 0, 180),
                "jitter": Option(0.01, "Standard deviation of point jitter, in volume widths.", 0, 0.2),
                "num_samples": Option(
                    None, "Use only the first N source digits (all 1,797 when empty).", 20, 1797,
                    integer=True, optional=True,
                ),
                "seed": _seed_option(),
            },
            class_names=lambda options: [str(digit) for digit in range(10)],
        ),
        DatasetSpec(
            name="phantom_lesions",
            title="Head phantoms with lesions",
            description=(
                "Binary: procedurally varied head phantoms (skull, brain, ventricles, texture, smooth "
                "deformation, noise and bias field); positives carry 1-3 small bright lesions."
            ),
            generator=generators.phantom_lesions,
            options={
                "num_samples": Option(400, "Number of phantoms.", 20, 20000, integer=True),
                "size": Option(32, "Edge of the cubic volume in voxels.", 16, 128, integer=True),
                "positive_fraction": Option(0.5, "Fraction of phantoms with lesions.", 0.05, 0.95),
                "lesion_contrast": Option(0.5, "Brightness a lesion adds over brain tissue.", 0.02, 2.0),
                "lesion_size": Option(1.0, "Lesion radius relative to the default (2.5 voxels at 32^3).", 0.3, 4.0),
                "noise": Option(0.05, "Standard deviation of Gaussian noise.", 0.0, 0.5),
                "seed": _seed_option(),
            },
            class_names=lambda options: ["healthy", "lesion"],
        ),
        DatasetSpec(
            name="shapes3d",
            title="Tiny 3D shapes (for tests)",
            description=(
                "Tiny and trivially separable: a cube or a ball (mode 'shape'), or the same cube in the left "
                "or right half of the volume (mode 'location')."
            ),
            generator=generators.shapes3d,
            options={
                "num_samples": Option(96, "Number of volumes.", 8, 20000, integer=True),
                "size": Option(12, "Edge of the cubic volume in voxels.", 6, 64, integer=True),
                "mode": Option("shape", "What separates the two classes.", choices=("shape", "location")),
                "noise": Option(0.05, "Standard deviation of Gaussian noise.", 0.0, 1.0),
                "seed": _seed_option(),
            },
            class_names=lambda options: ["cube", "ball"] if options["mode"] == "shape" else ["left", "right"],
        ),
    )
}

DEFAULT_DATASET = "digits3d"


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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def volume_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> list[int]:
        return np.bincount(self.y, minlength=self.num_classes).astype(int).tolist()


def dataset_names() -> list[str]:
    """The built-ins, then the imported datasets."""
    return list(DATASETS) + imported.names()


def _is_imported(name: str) -> bool:
    return name not in DATASETS and imported.exists(name)


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError([f"data.dataset is {name!r}; valid datasets are {', '.join(dataset_names())}."]) from None


def validate_options(name: str, options: dict[str, Any]) -> list[str]:
    """Sentences naming each bad knob of dataset ``name`` (empty when all are fine)."""
    if _is_imported(name):
        return [f"data.options.{key} is not a knob of {name}: an imported dataset has no knobs." for key in options]
    spec = _spec(name)
    problems = []
    for key, value in options.items():
        if key not in spec.options:
            problems.append(
                f"data.options.{key} is not a knob of {name}; its knobs are {', '.join(spec.options)}."
            )
            continue
        problem = spec.options[key].problem(f"data.options.{key}", value)
        if problem:
            problems.append(problem)
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
        "volume_shape": [edge, edge, edge, 1],
        "default_options": spec.defaults(),
        "options": {key: option.describe() for key, option in spec.options.items()},
        "cached": cache.load(name, cache.fingerprint(name, resolved)) is not None,
    }


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
    )


def make_splits(dataset: Dataset, val_fraction: float, test_fraction: float, seed: int = 0) -> Splits:
    """Stratified train / val / test indices of ``dataset``; group-aware when samples share groups.

    A dataset's predefined splits (an import's test set, say) are kept as given.
    """
    return _make_splits(
        dataset.y, val_fraction, test_fraction, seed=seed, groups=dataset.groups, class_names=dataset.class_names,
        predefined=dataset.predefined_split,
    )


# The import entry points a Data page calls (engine.datasets.importing and .uploads hold the details).
def validate_dataset_name(name: str) -> str:
    """``name`` when it may name a new imported dataset; DataError stating the rule otherwise."""
    return imported.validate_name(name, list(DATASETS))


def delete_imported(name: str) -> None:
    """Delete an imported dataset (never a built-in)."""
    imported.delete(name)


def extract_zip(zip_path, limits=None):
    """Extract an uploaded zip safely into a fresh folder and return it (see uploads.extract_zip)."""
    from engine.datasets import uploads

    return uploads.extract_zip(zip_path, limits or uploads.ZipLimits())


def allowed_import_roots():
    from engine.datasets import uploads

    return uploads.allowed_import_roots()


def check_import_path(path):
    """The resolved path when the dashboard may import from it; DataError otherwise."""
    from engine.datasets import uploads

    return uploads.check_import_path(path)
