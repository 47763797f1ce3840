"""Answers that need TensorFlow, obtained in a short-lived subprocess and kept on disk.

The dashboard process never imports TensorFlow (it must start fast and stay
responsive), so facts such as a model's layer table, parameter count and
training-memory estimate come from ``python -m engine describe`` run as a
child process (a few seconds: TensorFlow's start-up). The answer depends only
on the arguments and the model code, so it is cached on disk in
``<lab home>/describe-cache/<hash>.json`` (a model that cannot be described
is cached as its sentence too): the Train page's preview and the memory check
of ``jobs.launch`` share one probe per model and input.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine import paths
from engine.config import AUGMENT_KNOBS, ModelConfig, RunConfig
from engine.errors import ConfigError, LabError

# Building a model in a fresh process takes a few seconds (TensorFlow start-up).
DESCRIBE_TIMEOUT_S = 120
CACHE_DIR_NAME = "describe-cache"
# Bump when describe()'s output changes shape.
CACHE_VERSION = 1


@functools.lru_cache(maxsize=1)
def _models_code_hash() -> str:
    """A hash of engine/models/*.py, so a changed builder never reads a stale description."""
    digest = hashlib.sha256()
    for path in sorted((paths.REPO_ROOT / "engine" / "models").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _normalised(model_config: dict[str, Any]) -> dict[str, Any]:
    """The model section with every field (defaults filled), so the page's form and a RunConfig share a key."""
    try:
        return dataclasses.asdict(ModelConfig(**model_config))
    except TypeError:
        return dict(model_config)


def cache_path(model_config: dict[str, Any], input_shape, num_classes: int, batch_size: int) -> Path:
    payload = json.dumps(
        {"model": _normalised(model_config), "input_shape": [int(n) for n in input_shape],
         "classes": int(num_classes), "batch_size": int(batch_size), "code": _models_code_hash(),
         "version": CACHE_VERSION},
        sort_keys=True, default=str,
    )
    return paths.lab_home() / CACHE_DIR_NAME / f"{hashlib.sha256(payload.encode()).hexdigest()[:24]}.json"


def _read_cached(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent, or half-written by a process that died: probe again


def _write_cached(path: Path, entry: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".", suffix=".json", dir=path.parent)
        with os.fdopen(handle, "w") as file:
            json.dump(entry, file)
        os.replace(temporary, path)
    except OSError:
        pass  # a cache that cannot be written only costs another probe


def _answer(entry: dict[str, Any]) -> dict[str, Any]:
    if "description" in entry:
        return entry["description"]
    if entry.get("config_error"):
        raise ConfigError([entry["message"]])
    raise LabError(entry["message"])


# The learning-rate range test trains up to 100 batches.
LR_FIND_TIMEOUT_S = 600


def describe_model(
    model_config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, batch_size: int = 32
) -> dict[str, Any]:
    """engine.models.describe() for this config, computed in a subprocess (or read from the disk cache).

    Returns {"architecture", "params", "trainable_params", "layers": [...],
    "activation_bytes_per_sample", "estimated_training_bytes"}; raises
    ConfigError with the engine's sentence when the model cannot take the
    input, LabError when it cannot be built (out of memory, a crash).
    """
    path = cache_path(model_config, input_shape, num_classes, batch_size)
    cached = _read_cached(path)
    if cached is not None:
        return _answer(cached)
    command = [
        sys.executable, "-m", "engine", "describe",
        "--model-json", json.dumps(model_config),
        "--input-shape", *[str(int(s)) for s in input_shape],
        "--classes", str(int(num_classes)),
        "--batch-size", str(int(batch_size)),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    try:
        result = subprocess.run(
            command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True, timeout=DESCRIBE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        raise LabError("Describing the model took too long; try a smaller input or width.") from e
    if result.returncode == 0:
        entry = {"description": json.loads(result.stdout.strip().splitlines()[-1])}
    elif result.returncode == 2:
        entry = {"config_error": True, "message": result.stderr.strip().removeprefix("error: ")}
    else:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        out_of_memory = "OOM" in result.stderr or "ResourceExhausted" in result.stderr or result.returncode < 0
        why = "it ran out of memory" if out_of_memory else last[:300]
        entry = {"message": f"The model could not be built to describe it ({why}); lower the width multiplier "
                            "or resample the volumes smaller."}
        if not out_of_memory:
            return _answer(entry)  # a crash may be passing: not cached
    _write_cached(path, entry)
    return _answer(entry)


def find_learning_rate(config: dict[str, Any]) -> dict[str, Any]:
    """``python -m engine lr-find --config ... --json`` in a subprocess (tens of seconds): the sweep's
    rates, losses and suggestion, recorded as a run; ConfigError / LabError with the engine's sentence."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=paths.lab_home()) as handle:
        json.dump(config, handle)
    command = [sys.executable, "-m", "engine", "lr-find", "--config", handle.name, "--json"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        result = subprocess.run(
            command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True, timeout=LR_FIND_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        raise LabError("The learning-rate range test took too long; try a smaller dataset or batch.") from e
    finally:
        os.unlink(handle.name)
    if result.returncode == 2:
        raise ConfigError([result.stderr.strip().removeprefix("error: ")])
    if result.returncode != 0:
        raise LabError(f"The learning-rate range test failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# A plan builds up to four candidate models and may run a range test of 60 batches.
PLAN_TIMEOUT_S = 900


def plan(dataset: str, options: dict[str, Any], lr_test: bool = True, seed: int = 0) -> dict[str, Any]:
    """``python -m engine plan DATASET --json`` in a subprocess (TensorFlow stays out of the dashboard):
    the planned config, each choice with its reason, and the fingerprints; ConfigError / LabError with
    the engine's sentence."""
    command = [sys.executable, "-m", "engine", "plan", str(dataset), "--json", "--seed", str(int(seed))]
    for key, value in (options or {}).items():
        command += ["--option", f"{key}={json.dumps(value)}"]
    if not lr_test:
        command.append("--no-lr-test")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        result = subprocess.run(
            command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True, timeout=PLAN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise LabError("Planning took too long; plan without the learning-rate test, or a smaller dataset.") from e
    if result.returncode == 2:
        raise ConfigError([result.stderr.strip().splitlines()[-1].removeprefix("error: ")])
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise LabError(f"The plan could not be made: {last[:300]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# The augmentation preview reads a few volumes through the training pipeline (TensorFlow start-up dominates).
AUGMENT_PREVIEW_TIMEOUT_S = 120
# The first volumes of the first batch that the preview shows (at most the batch size).
AUGMENT_PREVIEW_VOLUMES = 4


def augmentation_preview(config: dict[str, Any], count: int = AUGMENT_PREVIEW_VOLUMES) -> dict[str, Any]:
    """``python -m engine augment-preview`` in a subprocess: the first ``count`` training volumes of epoch 1,
    as the network gets them, and the same volumes before augmentation.

    Returns {"before", "after": lists of 2D arrays (middle axial slice, channel 0), "labels", "slice",
    "volumes": per-volume min / max / mean / std before and after}; raises ConfigError / LabError with
    the engine's sentence. The child runs the very pipeline training uses (engine/training/augment_preview.py).
    """
    import numpy as np

    folder = tempfile.mkdtemp(prefix=".augment-preview-", dir=paths.lab_home())
    config_path, out_path = os.path.join(folder, "config.json"), os.path.join(folder, "slices.npz")
    try:
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        command = [sys.executable, "-m", "engine", "augment-preview", "--config", config_path,
                   "--count", str(int(count)), "--out", out_path, "--json"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
        try:
            result = subprocess.run(command, check=False, cwd=paths.REPO_ROOT, env=env, capture_output=True,
                                    text=True, timeout=AUGMENT_PREVIEW_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise LabError("The augmentation preview took too long; try a smaller dataset or volume.") from e
        if result.returncode == 2:
            raise ConfigError([result.stderr.strip().removeprefix("error: ")])
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise LabError(f"The augmentation preview failed ({last[:300]}).")
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        with np.load(out_path) as slices:
            before, after = slices["before"], slices["after"]
    finally:
        for path in (config_path, out_path):
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(folder)
    return {"before": list(before), "after": list(after), "labels": [row["label"] for row in answer["volumes"]],
            "slice": answer["slice"], "volumes": answer["volumes"]}


def augmentation_inputs(config: RunConfig) -> dict[str, Any]:
    """The part of a run config the augmentation preview depends on (the data, the seed, the augmentation), as
    a config dict: the key of its cache, so changing the epochs or the model does not compute it again."""
    training = config.training
    fields = ["seed", "augment", "augmentations", *[name for pair in AUGMENT_KNOBS.values() for name in pair]]
    return {"data": dataclasses.asdict(config.data),
            "training": {**{name: getattr(training, name) for name in fields},
                         "batch_size": min(int(training.batch_size), AUGMENT_PREVIEW_VOLUMES)}}
