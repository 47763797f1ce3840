"""A small 3D ResNet: the modern baseline among the presets (not a published model).

Stem Conv3D(32, 3, same) -> BN -> relu, then one basic residual block per stage
(two 3x3x3 convolutions with BN; a 1x1x1 projection shortcut when the filters
or the stride change) at 32, 64, 128 filters, stride 2 at the start of the
second and third stage, then global average pooling, dropout and the output.
Convolutions followed by BatchNorm have no bias (BN's offset replaces it); with
BatchNorm off they get one back.
"""

from __future__ import annotations

import keras
from keras import layers

from engine.models import common

STEM_FILTERS = 32
STAGES = ((32, 1), (64, 2), (128, 2))  # (filters, stride of the first convolution)


def _conv(x, filters: int, kernel_size: int, strides: int, name: str, knobs: common.Knobs):
    return layers.Conv3D(
        filters, kernel_size, strides=strides, padding="same", use_bias=not knobs["batchnorm"], name=name,
        **common.weight_options(knobs, "conv"),
    )(x)


def _residual_block(x, filters: int, strides: int, stage: int, knobs: common.Knobs):
    prefix = f"stage{stage}"
    shortcut = x
    x = _conv(x, filters, 3, strides, f"{prefix}_conv1", knobs)
    x = common.batch_norm(x, knobs, f"{prefix}_bn1")
    x = layers.Activation("relu", name=f"{prefix}_relu1")(x)
    x = _conv(x, filters, 3, 1, f"{prefix}_conv2", knobs)
    x = common.batch_norm(x, knobs, f"{prefix}_bn2")
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(shortcut, filters, 1, strides, f"{prefix}_shortcut_conv", knobs)
        shortcut = common.batch_norm(shortcut, knobs, f"{prefix}_shortcut_bn")
    x = layers.Add(name=f"{prefix}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{prefix}_out")(x)


def build(input_shape, num_classes: int, knobs: common.Knobs) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="volume")
    x = _conv(inputs, common.scaled(STEM_FILTERS, knobs), 3, 1, "stem_conv", knobs)
    x = common.batch_norm(x, knobs, "stem_bn")
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, (filters, strides) in enumerate(STAGES, start=1):
        x = _residual_block(x, common.scaled(filters, knobs), strides, stage, knobs)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    x = common.dropout(x, knobs, "head_dropout")
    outputs = common.predictions(x, num_classes, knobs)
    return keras.Model(inputs, outputs, name="resnet3d")
