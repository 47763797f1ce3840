"""``describe()``: what a preset looks like at a given input, without training it."""

from __future__ import annotations

import math
from typing import Any

import keras

from engine.config import ModelConfig
from engine.models.builders import build_model
from engine.models.registry import ARCHITECTURES, resolve_knobs

BYTES_PER_FLOAT = 4
# Weights, gradients and Adam's two moment slots.
COPIES_OF_WEIGHTS_IN_TRAINING = 4
# Activations kept for the backward pass plus their gradients.
COPIES_OF_ACTIVATIONS_IN_TRAINING = 2


def _count(variables) -> int:
    return sum(math.prod(variable.shape) for variable in variables)


def _layer_row(layer: keras.layers.Layer) -> dict[str, Any]:
    shape = [None if n is None else int(n) for n in layer.output.shape]
    return {"name": layer.name, "type": type(layer).__name__, "output_shape": shape, "params": int(layer.count_params())}


def describe(
    arch: str,
    input_shape,
    num_classes: int,
    model_config: ModelConfig | None = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    model = build_model(arch, input_shape, num_classes, model_config)
    rows = [_layer_row(layer) for layer in model.layers]
    params = int(model.count_params())
    # Rough: every layer's float32 output for one sample, the input included.
    activation_bytes = BYTES_PER_FLOAT * sum(math.prod(row["output_shape"][1:]) for row in rows)
    return {
        "architecture": arch,
        "input_shape": [int(n) for n in input_shape],
        "num_classes": int(num_classes),
        "batch_size": int(batch_size),
        "knobs": resolve_knobs(arch, model_config),
        "last_conv_layer": ARCHITECTURES[arch].last_conv_layer,
        "params": params,
        "trainable_params": int(_count(model.trainable_weights)),
        "layers": rows,
        "activation_bytes_per_sample": int(activation_bytes),
        "estimated_training_bytes": int(
            params * BYTES_PER_FLOAT * COPIES_OF_WEIGHTS_IN_TRAINING
            + activation_bytes * batch_size * COPIES_OF_ACTIVATIONS_IN_TRAINING
        ),
    }
