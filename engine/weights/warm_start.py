"""Where a run's starting weights come from, and which of them fit: plain Python and h5py, no Keras.

A run starts from random weights, or (``training.init_from``) from

- another run: ``"run:12"`` or ``"12"``; its best checkpoint (``best.keras``, else ``last.keras``);
- a file: the path of a Keras ``.keras`` model or an ``.h5`` weights file (Keras 3 ``*.weights.h5``,
  or a Keras 2 / legacy model or weights file).

Weights are matched to the new model layer by layer, by name and by the shapes of the layer's
weights. The output layer (``predictions``) is rebuilt for the new run's classes, unless the source
is a run whose class names are the same as this run's. ``match`` returns one row per layer of the
new model saying what happened to it (loaded, rebuilt, shape differs, not in the source), so the
run's events and the CLI list every mismatch as a sentence rather than a traceback.

The files are read with h5py (a ``.keras`` file is a zip holding ``model.weights.h5``), so the
dashboard can check a file without TensorFlow, and no code in a file is ever deserialised.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import paths, runs, settings
from engine.weights import checkpoints
from engine.config import RunConfig
from engine.errors import ConfigError, DataError, Problem, RunNotFound

# File suffixes a weights file may have.
WEIGHT_SUFFIXES = (".keras", ".h5", ".hdf5")
# The name every preset gives its output layer (engine/models/common.py): rebuilt for new classes.
OUTPUT_LAYER = "predictions"
# What a ``match`` row says about one layer of the new model.
LOADED = "loaded"
REBUILT = "rebuilt (new classes)"
SHAPE_DIFFERS = "shape differs: kept random"
NOT_IN_SOURCE = "not in the source: kept random"

LayerWeights = dict[str, list[np.ndarray]]


@dataclass(frozen=True)
class InitSource:
    """A parsed ``training.init_from``: a run id or a file path (exactly one is set)."""

    run_id: int | None = None
    path: Path | None = None

    @property
    def label(self) -> str:
        """How events and pages name it: "run #12" or the file's name."""
        return f"run #{self.run_id}" if self.run_id is not None else (self.path.name if self.path else "")


def parse(init_from: str) -> InitSource:
    """``"run:12"``, ``"#12"`` or ``"12"`` is run 12; anything else is a file path."""
    run_id = runs.run_reference(init_from)
    if run_id is not None:
        return InitSource(run_id=run_id)
    return InitSource(path=Path(init_from.strip()).expanduser())


def _problem(sentence: str) -> ConfigError:
    return ConfigError([Problem("training.init_from", sentence)])


def weights_path(source: InitSource, store) -> Path:
    """The file to read the starting weights from; ``ConfigError`` (a sentence) when there is none."""
    if source.path is not None:
        path = source.path
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise _problem(f"training.init_from names {path.name!r}; give a .keras or .h5 weights file, or a run "
                           "such as run:12.")
        if not path.is_file():
            raise _problem(f"The weights file {path} does not exist; check the path (a path on the server).")
        if settings.demo_mode() and not path.resolve().is_relative_to(uploads_dir().resolve()):
            raise _problem("This demo starts runs only from weights files uploaded on the Train page; upload the file.")
        return path
    if source.run_id is None:
        raise _problem("training.init_from names neither a run nor a file; give run:12 or a .keras / .h5 path.")
    try:
        run = store.get_run(source.run_id)
    except RunNotFound:
        raise _problem(f"training.init_from names run #{source.run_id}, which does not exist; pick a run from "
                       "`python -m engine runs`.") from None
    folder = paths.run_dir(run.id, create=False)
    for name in (checkpoints.BEST, checkpoints.LAST):
        if checkpoints.problem(folder / name) is None:
            return folder / name
    raise _problem(f"Run #{run.id} has no usable checkpoint (status {run.status.label}); start from a run that "
                   "trained at least one epoch.")


def check_source(config: RunConfig, store) -> None:
    """Refuse (``ConfigError``) a config whose ``init_from`` cannot be used; nothing when it is None.

    A run source must have trained the same architecture (its layers would not match otherwise),
    and its weights must be readable.
    """
    init_from = config.training.init_from
    if init_from is None:
        return
    source = parse(init_from)
    path = weights_path(source, store)
    if source.run_id is not None:
        parent = store.get_run(source.run_id)
        if parent.architecture != config.model.architecture:
            raise _problem(
                f"Run #{parent.id} trained {parent.architecture}, this run builds {config.model.architecture}; "
                f"set model.architecture to {parent.architecture} to start from it."
            )
    read_layer_weights(path)


def read_layer_weights(path: Path) -> LayerWeights:
    """{layer name: its weights in Keras' order} from a ``.keras`` or ``.h5`` file; ``DataError`` if unreadable."""
    import h5py

    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                data = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(data, "r") as handle:
                found = _keras3_layers(handle)
        else:
            with h5py.File(path, "r") as handle:
                found = _keras3_layers(handle) if "layers" in handle else _legacy_layers(handle)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as e:
        raise DataError(
            f"{path.name} is not a Keras weights file that can be read ({type(e).__name__}); save the model with "
            "model.save('model.keras') or model.save_weights('model.weights.h5')."
        ) from e
    if not found:
        raise DataError(f"{path.name} holds no layer weights; save the model with model.save('model.keras').")
    return found


def _keras3_layers(handle) -> LayerWeights:
    """Keras 3 layout: ``layers/<key>/vars/0, 1, ...`` with the layer's name in the ``vars`` attributes."""
    found: LayerWeights = {}
    for key, group in handle["layers"].items():
        variables = group.get("vars")
        if variables is None or not len(variables):
            continue
        name = str(variables.attrs.get("name", key))
        found[name] = [np.asarray(variables[str(index)]) for index in range(len(variables))]
    return found


def _legacy_layers(handle) -> LayerWeights:
    """Keras 2 / legacy ``.h5``: ``[model_weights/]<layer>`` groups listing their ``weight_names``."""
    root = handle.get("model_weights", handle)
    found: LayerWeights = {}
    for name in (_text(n) for n in root.attrs.get("layer_names", [])):
        group = root[name]
        names = [_text(n) for n in group.attrs.get("weight_names", [])]
        if names:
            found[name] = [np.asarray(group[weight]) for weight in names]
    return found


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class LayerMatch:
    """What starting from the source did to one layer of the new model."""

    layer: str
    outcome: str
    target_shapes: tuple[tuple[int, ...], ...]
    source_shapes: tuple[tuple[int, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "outcome": self.outcome, "target_shapes": [list(s) for s in self.target_shapes],
                "source_shapes": None if self.source_shapes is None else [list(s) for s in self.source_shapes]}


def match(target: dict[str, list[tuple[int, ...]]], source: LayerWeights, *, keep_output: bool) -> list[LayerMatch]:
    """One row per layer of the new model that has weights (``target``: {name: weight shapes}).

    ``keep_output``: load the output layer too (same classes); otherwise it is rebuilt.
    """
    rows = []
    for name, shapes in target.items():
        target_shapes = tuple(tuple(int(n) for n in shape) for shape in shapes)
        weights = source.get(name)
        source_shapes = None if weights is None else tuple(tuple(int(n) for n in w.shape) for w in weights)
        if name == OUTPUT_LAYER and not keep_output:
            outcome = REBUILT
        elif weights is None:
            outcome = NOT_IN_SOURCE
        elif source_shapes != target_shapes:
            outcome = SHAPE_DIFFERS
        else:
            outcome = LOADED
        rows.append(LayerMatch(name, outcome, target_shapes, source_shapes))
    return rows


def summary(rows: list[LayerMatch], source_label: str) -> str:
    """One sentence for the run's events: how many layers were loaded, and every mismatch by name."""
    loaded = [row.layer for row in rows if row.outcome == LOADED]
    text = f"started from {source_label}: {len(loaded)} of {len(rows)} layers with weights loaded"
    mismatched = [row for row in rows if row.outcome not in (LOADED,)]
    if mismatched:
        parts = []
        for row in mismatched:
            detail = row.outcome
            if row.outcome == SHAPE_DIFFERS:
                detail = f"shape {_shapes(row.source_shapes)} in the source, {_shapes(row.target_shapes)} here"
            parts.append(f"{row.layer} ({detail})")
        text += "; not loaded: " + ", ".join(parts)
    return text


def _shapes(shapes) -> str:
    return " + ".join("x".join(str(n) for n in shape) for shape in shapes or ())


# --------------------------------------------------------------------------- choosing a source
# Uploaded weights files live here, under the workspace: ``<lab home>/weights/<hash>-<name>``.
UPLOADS_DIR_NAME = "weights"
# The largest weights file the Train page accepts.
MAX_UPLOAD_BYTES = 2 * 1024**3
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir() -> Path:
    return paths.lab_home() / UPLOADS_DIR_NAME


def save_upload(file_name: str, data: bytes) -> Path:
    """Keep an uploaded weights file in the workspace (once per content) and check that it reads; returns its path.

    ``DataError`` (a sentence) for a wrong suffix, a file too large, or one that holds no readable
    weights; nothing is left behind then.
    """
    import hashlib
    import os
    import tempfile

    suffix = Path(file_name).suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise DataError(f"{file_name} is not a weights file; upload a .keras model or an .h5 weights file.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{file_name} is larger than {MAX_UPLOAD_BYTES // 1024**3} GiB; upload a smaller model.")
    stem = _SAFE_NAME.sub("_", Path(file_name).stem)[:80] or "weights"
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{stem}{suffix}"
    if target.is_file():
        return target
    handle, temporary = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        read_layer_weights(Path(temporary))
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def layer_rows(path: Path) -> list[dict[str, str]]:
    """The layers of a weights file and their weight shapes, for a table."""
    return [{"layer": name, "weights": _shapes(tuple(w.shape for w in weights))}
            for name, weights in read_layer_weights(path).items()]


def start_points(store, architecture: str | None = None) -> list[dict[str, Any]]:
    """Runs a new run can start from (a usable checkpoint; not learning-rate tests), newest first.

    Each: {"id", "label", "architecture", "dataset", "pretraining"}; only ``architecture``'s when given.
    """
    found = []
    for run in store.list_runs(archived=False):
        if run.is_lr_find or run.status.is_active or (architecture and run.architecture != architecture):
            continue
        folder = paths.run_dir(run.id, create=False)
        if not any(checkpoints.problem(folder / name) is None for name in (checkpoints.BEST, checkpoints.LAST)):
            continue
        found.append({"id": run.id, "label": run.label, "architecture": run.architecture, "dataset": run.dataset,
                      "pretraining": run.is_pretraining})
    return found


# --------------------------------------------------------------------------- blocks
_BLOCK_NAME = re.compile(r"^(?:block|stage)(\d+)_")
# Layers before the first numbered block (resnet3d's stem) belong to block 1.
_STEM_PREFIX = "stem_"


def block_of(layer_name: str) -> int | None:
    """The backbone block (1, 2, ...) a preset's layer belongs to; None for the head and the input.

    Presets name their layers ``block<N>_...`` (tutorial3d, compact3d, kerasio3d, vgg3d) or
    ``stage<N>_...`` after a ``stem_...`` (resnet3d, whose stem counts as part of block 1).
    """
    if layer_name.startswith(_STEM_PREFIX):
        return 1
    matched = _BLOCK_NAME.match(layer_name)
    return int(matched.group(1)) if matched else None


# Backbone blocks of each preset (what training.freeze_blocks counts), checked against the built models
# by tests/training/test_transfer.py.
BLOCKS = {"tutorial3d": 2, "compact3d": 3, "kerasio3d": 4, "vgg3d": 5, "resnet3d": 3}


def freeze_problems(config: RunConfig) -> list[Problem]:
    """training.freeze_blocks beyond the architecture's blocks."""
    count = BLOCKS.get(config.model.architecture)
    freeze = config.training.freeze_blocks
    if count is None or not isinstance(freeze, int) or freeze <= count:
        return []
    return [Problem(
        "training.freeze_blocks",
        f"training.freeze_blocks is {freeze}; {config.model.architecture} has {count} blocks, so freeze at most {count}.",
    )]


__all__ = [
    "BLOCKS",
    "LOADED",
    "NOT_IN_SOURCE",
    "OUTPUT_LAYER",
    "REBUILT",
    "SHAPE_DIFFERS",
    "InitSource",
    "LayerMatch",
    "block_of",
    "check_source",
    "freeze_problems",
    "layer_rows",
    "match",
    "parse",
    "read_layer_weights",
    "save_upload",
    "start_points",
    "summary",
    "uploads_dir",
    "weights_path",
]
