"""A run's input recipe, and new scans read through it (NumPy only; no TensorFlow).

The recipe is never typed by the person who predicts: an imported dataset's
manifest holds the reader and preprocessing options it was imported with
(``engine.datasets.importing.read_inputs`` applies them through the import's
own ``_prepare``), the run's config holds the per-volume normalisation applied
in training (``engine.datasets.normalize``, as ``engine.training.pipeline``
does). A scan whose modality, voxel spacing or size lies far outside the
training data gets a warning; a scan whose preprocessed shape is not the
model's input is refused with a sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import datasets
from engine.datasets import imported
from engine.datasets.importing import ImportOptions, ScanInput, read_inputs
from engine.errors import DataError
from engine.runs import RunRecord, RunStatus

# Spacing per axis outside [smallest / SPACING_FACTOR, largest * SPACING_FACTOR] of the training scans: a warning.
SPACING_FACTOR = 1.5
# Size per axis (before resampling) outside [smallest / SHAPE_FACTOR, largest * SHAPE_FACTOR]: a warning.
SHAPE_FACTOR = 2.0
# Two-class runs predict the positive class when P(positive class) >= this, unless the run stores its own threshold.
DEFAULT_THRESHOLD = 0.5


@dataclass
class Recipe:
    """Everything needed to feed a run's model a new scan as its training data was fed."""

    run_id: int
    dataset: str
    imported: bool
    options: ImportOptions | None  # the import's reader and preprocessing options (None: a built-in dataset)
    normalization: str  # the run's per-volume normalisation (config.data.normalization)
    volume_shape: tuple[int, int, int, int]  # (D, H, W, C) the model takes
    class_names: list[str]
    fingerprint: str | None
    reader_format: str | None  # the format the dataset was imported from
    modalities: list[str] = field(default_factory=list)  # DICOM modalities of the training scans
    spacing_range: list[list[float]] | None = None  # per axis [smallest, largest] voxel size (mm)
    shape_range: list[list[int]] | None = None  # per axis [smallest, largest] size before resampling
    positive_class: str | None = None  # two classes: the run's positive class (RunRecord.positive_class)

    @property
    def threshold(self) -> float | None:
        return DEFAULT_THRESHOLD if len(self.class_names) == 2 else None

    @property
    def positive_index(self) -> int | None:
        """The positive class's index among the class names (two classes); None for more."""
        return self.class_names.index(self.positive_class) if self.positive_class in self.class_names else None

    def preprocessing(self) -> dict[str, Any]:
        """What another program needs to feed the model (an export's preprocessing.json)."""
        options = self.options.to_dict() if self.options is not None else None
        steps = (
            ["read the scan (" + (self.reader_format or "array") + ")"]
            + (["reorient to RAS+ (nibabel as_closest_canonical)"] if options and options["reorient"] else [])
            + ([f"channels: {options['channels']}"] if options and options["channels"] != "keep" else [])
            + ([f"CT window {options['window']}: clip to level ± width/2 HU, scale to [0, 1]"]
               if options and options["window"] else [])
            + ([f"clip to percentiles {options['clip_percentiles']}"] if options and options["clip_percentiles"] else [])
            + ([f"resample (linear, scipy.ndimage.zoom grid_mode) to {options['shape']}"]
               if options and options["shape"] else [])
            + ([f"per-volume {options['normalization']} (import)"] if options and options["normalization"] != "none" else [])
            + ([f"per-volume {self.normalization} (training)"] if self.normalization != "none" else [])
        )
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "dataset_fingerprint": self.fingerprint,
            "input_shape": [None, *self.volume_shape],
            "input_layout": "NDHWC float32 (batch, depth, height, width, channels)",
            "output": (f"one sigmoid unit: P({self.class_names[1]}), the second class" if len(self.class_names) == 2
                       else f"softmax over {len(self.class_names)} classes"),
            "class_names": list(self.class_names),
            "threshold": self.threshold,
            "positive_class": self.positive_class,
            "spacing_mm": self.spacing_range,
            "orientation": ("RAS+ (reoriented on import)" if self.options is not None and self.options.reorient
                            else "as stored in the files (not reoriented)"),
            "import_options": options,
            "window": options["window"] if options else None,
            "normalization": {"import": options["normalization"] if options else "none", "training": self.normalization},
            "steps": steps,
        }


def _training_geometry(manifest: dict[str, Any]) -> dict[str, Any]:
    samples = manifest.get("samples", [])
    modalities = sorted({s["modality"] for s in samples if s.get("modality")})
    spacings = np.asarray([s["spacing"] for s in samples if s.get("spacing") and len(s["spacing"]) == 3], dtype=float)
    shapes = np.asarray([s["shape"][:3] for s in samples if s.get("shape") and len(s["shape"]) >= 3], dtype=float)
    return {
        "modalities": modalities,
        "spacing_range": np.stack([spacings.min(0), spacings.max(0)], 1).round(4).tolist() if len(spacings) else None,
        "shape_range": np.stack([shapes.min(0), shapes.max(0)], 1).astype(int).tolist() if len(shapes) else None,
    }


def recipe_for(run: RunRecord) -> Recipe:
    """The input recipe of a finished run (DataError with a sentence when it has none)."""
    if run.status != RunStatus.FINISHED:
        raise DataError(f"Run {run.id} is {run.status.label}; only a finished run has a model to predict with.")
    data = run.config.data
    class_names = [str(name) for name in run.class_names]
    if imported.exists(data.dataset):
        manifest = imported.manifest(data.dataset)
        if run.dataset_fingerprint and manifest["fingerprint"] != run.dataset_fingerprint:
            raise DataError(
                f"The dataset {data.dataset!r} was imported again after run {run.id} was trained (fingerprint "
                f"{manifest['fingerprint']}, the run's {run.dataset_fingerprint}), so its preprocessing may no "
                "longer be the run's; predict with a run trained on the current import."
            )
        options = ImportOptions(**{key: (tuple(value) if key in ("shape", "clip_percentiles") and value else value)
                                   for key, value in manifest["options"].items()
                                   if key in ImportOptions.__dataclass_fields__})
        return Recipe(run.id, data.dataset, True, options, data.normalization, tuple(manifest["volume_shape"]),
                      class_names or list(manifest["class_names"]), manifest["fingerprint"],
                      manifest["reader"]["format"], **_training_geometry(manifest),
                      positive_class=run.positive_class)
    if data.dataset in datasets.dataset_names():
        info = datasets.dataset_info(data.dataset, data.options)
        return Recipe(run.id, data.dataset, False, None, data.normalization, tuple(info["volume_shape"]),
                      class_names or list(info["class_names"]), run.dataset_fingerprint, None,
                      positive_class=run.positive_class)
    raise DataError(f"Run {run.id} was trained on the dataset {data.dataset!r}, which no longer exists here.")


@dataclass
class Case:
    """One new scan ready for the model: the volume after the recipe, and what looked unusual."""

    path: str
    volume: np.ndarray  # (D, H, W, C) float32 as the model takes it
    warnings: list[str]
    shape: tuple[int, ...] | None
    spacing: tuple[float, ...] | None
    modality: str | None

    def header(self) -> dict[str, Any]:
        return {"path": self.path, "shape": list(self.shape) if self.shape else None,
                "spacing": list(self.spacing) if self.spacing else None, "modality": self.modality,
                "warnings": list(self.warnings)}


def _shape_text(shape) -> str:
    return "x".join(str(int(n)) for n in shape)


def _outside(values, ranges, factor) -> list[int]:
    return [axis for axis, (value, (low, high)) in enumerate(zip(values, ranges))
            if value < low / factor or value > high * factor]


def _warnings(recipe: Recipe, scan: ScanInput) -> list[str]:
    found = []
    if recipe.reader_format and scan.format != recipe.reader_format:
        found.append(f"{scan.path} is a {scan.format} file, but run {recipe.run_id} was trained on {recipe.reader_format} "
                     "scans; check that it is the same kind of image.")
    if scan.modality and recipe.modalities and scan.modality not in recipe.modalities:
        found.append(f"{scan.path} is {scan.modality}, but run {recipe.run_id} was trained on "
                     f"{', '.join(recipe.modalities)} scans only; its prediction is not to be trusted.")
    if scan.spacing and recipe.spacing_range and len(scan.spacing) == 3:
        axes = _outside(scan.spacing, recipe.spacing_range, SPACING_FACTOR)
        if axes:
            trained = " x ".join(f"{low:g}-{high:g}" for low, high in recipe.spacing_range)
            found.append(f"{scan.path} has voxels of {' x '.join(f'{s:g}' for s in scan.spacing)} mm, far from the "
                         f"training scans' {trained} mm; the model saw anatomy at another scale.")
    if scan.shape and recipe.shape_range and recipe.options is not None and recipe.options.shape is not None:
        axes = _outside(scan.shape[:3], recipe.shape_range, SHAPE_FACTOR)
        if axes:
            trained = " x ".join(f"{low}-{high}" for low, high in recipe.shape_range)
            found.append(f"{scan.path} is {_shape_text(scan.shape[:3])} voxels, far from the training scans' {trained}; "
                         f"it was resampled to {_shape_text(recipe.options.shape)} all the same.")
    return found


def _shape_problem(recipe: Recipe, scan: ScanInput) -> str | None:
    got, wanted = tuple(scan.voxels.shape), tuple(recipe.volume_shape)
    if got == wanted:
        return None
    if got[:3] != wanted[:3]:
        if recipe.imported and recipe.options.shape is not None:  # cannot happen: resampling fixes the shape
            return f"comes out of the preprocessing as {_shape_text(got[:3])}, not {_shape_text(wanted[:3])}"
        how = (f"its dataset {recipe.dataset!r} was imported without resampling, so resample the scan to "
               f"{_shape_text(wanted[:3])} first (or re-import the dataset with a shape, --shape, and train again)"
               if recipe.imported else f"give volumes of the dataset {recipe.dataset!r}'s shape")
        return (f"has shape {_shape_text(got[:3])} but run {recipe.run_id}'s model takes {_shape_text(wanted[:3])}; "
                f"{how}")
    return (f"has {got[3]} channels but run {recipe.run_id}'s model takes {wanted[3]}; give scans with "
            f"{wanted[3]} channel(s)")


def load_cases(recipe: Recipe, sources: list[str | os.PathLike]) -> tuple[list[Case], dict[str, str]]:
    """Every scan in ``sources`` ready for the model, and the ones refused (path -> why).

    Raises DataError with a sentence when no usable scan remains.
    """
    cases, refused = [], {}
    # A built-in dataset's volumes are the generator's arrays, with no import preprocessing.
    options = recipe.options if recipe.options is not None else ImportOptions(normalization="none")
    for source in sources:
        scans, skipped = read_inputs(source, options)
        refused.update(skipped)
        for scan in scans:
            problem = _shape_problem(recipe, scan)
            if problem:
                refused[scan.path] = problem
                continue
            volume = datasets.normalize(scan.voxels[np.newaxis], recipe.normalization)[0]
            cases.append(Case(scan.path, volume, _warnings(recipe, scan), scan.shape, scan.spacing, scan.modality))
    if not cases:
        if refused:
            path, why = next(iter(refused.items()))
            raise DataError(f"No scan could be predicted: {path} {why}." if len(refused) == 1 else
                            f"No scan could be predicted: all {len(refused)} were refused (e.g. {path} {why}).")
        raise DataError("No scan was found in the paths given; give a DICOM series folder, a NIfTI file, a zip, "
                        "or an HDF5 / NPZ file of volumes.")
    return cases, refused
