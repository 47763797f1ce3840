"""Hand a run's model to another program: Keras (.keras), TensorFlow SavedModel or ONNX, with preprocessing.json.

Every export is a folder (or that folder zipped, when ``out`` ends in .zip)
holding the model and ``preprocessing.json``: input shape and layout, voxel
spacing and orientation of the training scans, the window and normalisations,
the class names, the output's meaning and the decision threshold, so another
program can feed the model exactly as the lab did (``inputs.Recipe.preprocessing``).

The exported model's input is the volume after every preprocessing step
(NDHWC float32) and its output is the Keras model's (one sigmoid unit for two
classes, a softmax otherwise). ONNX goes through tf2onnx (an optional
requirement: ``pip install -r requirements-export.txt``), converting a traced
``tf.function`` of the model in inference mode (BatchNorm and Dropout frozen).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from engine import paths
from engine.weights import checkpoints
from engine.errors import DataError, LabError
from engine.inference import inputs as inputs_module
from engine.inference.predict import load_model
from engine.runs import RunRecord
from engine.store import artefacts

FORMATS = ("keras", "savedmodel", "onnx")
PREPROCESSING_FILE = "preprocessing.json"
MODEL_FILES = {"keras": "model.keras", "savedmodel": "savedmodel", "onnx": "model.onnx"}
# ONNX operator set: 17 is read by every onnxruntime since 1.13.
ONNX_OPSET = 17
ONNX_INPUT = "volume"
ONNX_MISSING = ("ONNX export needs tf2onnx (and onnxruntime to check it): "
                "pip install -r requirements-export.txt, then export again.")


def onnx_available() -> bool:
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def default_out(run: RunRecord, fmt: str) -> Path:
    return paths.run_dir(run.id) / "exports" / f"run{run.id}-{fmt}"


def export_run(store, run_id: int, fmt: str, out: str | os.PathLike | None = None) -> Path:
    """Write run ``run_id``'s model in ``fmt`` with preprocessing.json to ``out`` (a folder, or a .zip); returns it."""
    if fmt not in FORMATS:
        raise LabError(f"The format is {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if fmt == "onnx" and not onnx_available():
        raise LabError(ONNX_MISSING)
    run = store.get_run(run_id)
    recipe = inputs_module.recipe_for(run)
    best = artefacts.run_folder(run.id) / checkpoints.BEST
    problem = checkpoints.problem(best)
    if problem:
        raise DataError(f"Run {run.id}'s model {best.name} {problem}, so it cannot be exported; train the run again.")
    target = Path(out) if out is not None else default_out(run, fmt)
    zipped = target.suffix.lower() == ".zip"
    if target.exists() and (zipped or not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} already exists; choose another --out or delete it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        model_path = staging / MODEL_FILES[fmt]
        if fmt == "keras":
            shutil.copyfile(best, model_path)
        else:
            model = load_model(run)
            if fmt == "savedmodel":
                model.export(str(model_path), format="tf_saved_model", verbose=False)
            else:
                _to_onnx(model, recipe.volume_shape, model_path)
        description = {"format": fmt, "model_file": MODEL_FILES[fmt], **recipe.preprocessing(),
                       "how_to_load": _how_to_load(fmt)}
        (staging / PREPROCESSING_FILE).write_text(json.dumps(description, indent=1), encoding="utf-8")
        if zipped:
            archive = shutil.make_archive(str(target.parent / f".{target.stem}.partial"), "zip", root_dir=staging)
            os.replace(archive, target)
        else:
            if target.exists():
                target.rmdir()
            os.rename(staging, target)
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _to_onnx(model, volume_shape, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, *volume_shape), tf.float32, name=ONNX_INPUT),)
    function = tf.function(lambda volume: model(volume, training=False), input_signature=signature)
    tf2onnx.convert.from_function(function, input_signature=signature, opset=ONNX_OPSET, output_path=str(path))


def _how_to_load(fmt: str) -> str:
    if fmt == "keras":
        return "keras.models.load_model('model.keras').predict(volumes)"
    if fmt == "savedmodel":
        return "tf.saved_model.load('savedmodel').serve(volumes)"
    return (f"onnxruntime.InferenceSession('model.onnx').run(None, {{'{ONNX_INPUT}': volumes}})[0]")
