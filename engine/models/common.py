"""Keras pieces shared by the preset builders (imports Keras: builders only).

Every builder takes the knobs from ``registry.resolve_knobs`` and names each
layer explicitly, so names are stable across builds and Grad-CAM can find
``ArchSpec.last_conv_layer``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

Knobs = dict[str, Any]


def scaled(units: int, knobs: Knobs) -> int:
    """A filter or unit count times the width multiplier, rounded half up, at least 1."""
    return max(1, int(units * knobs["width_multiplier"] + 0.5))


def weight_options(knobs: Knobs, part: str) -> dict[str, Any]:
    """Initializer and L2 regularizer for a kernel; ``part`` is "conv", "dense" or "output".

    With ``l2_scope == "head"`` (the VGG reference) only the hidden Dense layers are regularized.
    """
    regularize = knobs["l2"] > 0 and (knobs["l2_scope"] == "all" or part == "dense")
    return {
        "kernel_initializer": knobs["kernel_initializer"],
        "kernel_regularizer": keras.regularizers.L2(knobs["l2"]) if regularize else None,
    }


def batch_norm(x, knobs: Knobs, name: str):
    """BatchNormalization with the configured momentum, or ``x`` unchanged when BatchNorm is off."""
    if not knobs["batchnorm"]:
        return x
    return layers.BatchNormalization(momentum=knobs["batchnorm_momentum"], name=name)(x)


def dropout(x, knobs: Knobs, name: str):
    """Dropout at the configured rate, or ``x`` unchanged when the rate is 0 (no layer at all)."""
    if knobs["dropout_rate"] <= 0:
        return x
    return layers.Dropout(knobs["dropout_rate"], name=name)(x)


def conv_block(x, filters: int, knobs: Knobs, index: int, *, batch_norm_after_pool: bool = False,
               dropout_after: bool = True):
    """One block of the plain presets: Conv3D(3, relu) -> BatchNorm -> MaxPool(2) -> Dropout.

    The Keras.io CT example puts BatchNorm after the pooling and has no dropout in its blocks
    (``batch_norm_after_pool=True, dropout_after=False``). BatchNorm and Dropout follow the knobs
    (no layer when off). Layers are named ``block<index>_conv|bn|pool|dropout``, as Grad-CAM and the
    saved models expect, so a preset built from blocks keeps its layer names and parameter count.
    """
    x = layers.Conv3D(
        scaled(filters, knobs), 3, activation="relu", padding=knobs["padding"], name=f"block{index}_conv",
        **weight_options(knobs, "conv"),
    )(x)
    if not batch_norm_after_pool:
        x = batch_norm(x, knobs, f"block{index}_bn")
    x = layers.MaxPool3D(2, name=f"block{index}_pool")(x)
    if batch_norm_after_pool:
        x = batch_norm(x, knobs, f"block{index}_bn")
    if dropout_after:
        x = dropout(x, knobs, f"block{index}_dropout")
    return x


def predictions(x, num_classes: int, knobs: Knobs):
    """The output layer of every preset.

    Two classes: one sigmoid unit, the probability of class 1 (as in the Keras.io
    CT example). More: a softmax over the classes.
    """
    if num_classes == 2:
        units, activation = 1, "sigmoid"
    else:
        units, activation = num_classes, "softmax"
    # float32 under any dtype policy: under mixed precision the probabilities and the loss stay float32
    # (a bfloat16 sigmoid rounds 0.999 to 1.0 and the cross-entropy to nothing).
    return layers.Dense(
        units, activation=activation, name="predictions", dtype="float32", **weight_options(knobs, "output")
    )(x)
