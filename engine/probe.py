"""Answers that need TensorFlow, obtained in a short-lived subprocess.

The dashboard process never imports TensorFlow (it must start fast and stay
responsive), so facts such as a model's layer table and parameter count come
from ``python -m engine describe`` run as a child process. Callers should
cache the result (they depend only on the arguments).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from engine import paths
from engine.errors import ConfigError, LabError

# Building a model in a fresh process takes a few seconds (TensorFlow start-up).
DESCRIBE_TIMEOUT_S = 120
# The learning-rate range test trains up to 100 batches.
LR_FIND_TIMEOUT_S = 600


def describe_model(
    model_config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, batch_size: int = 32
) -> dict[str, Any]:
    """engine.models.describe() for this config, computed in a subprocess.

    Returns {"architecture", "params", "trainable_params", "layers": [...],
    "activation_bytes_per_sample", "estimated_training_bytes"}; raises
    ConfigError with the engine's sentence when the model cannot be built.
    """
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
    if result.returncode == 2:
        raise ConfigError([result.stderr.strip().removeprefix("error: ")])
    if result.returncode != 0:
        raise LabError(f"Could not describe the model: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


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
