"""VGG16 in 3D: the "VGG-like net" of the mammography cross-validation question.

Five blocks of 2, 2, 3, 3, 3 same-padded 3x3x3 convolutions, each followed by
BatchNorm (when on) and relu, and a 2x max pooling after each block; then
Flatten -> Dense 256 -> Dropout -> Dense 256 -> Dropout -> output.

The pooling is same-padded (ceil(n / 2)) so that small volumes work: a 16^3
digit is 8, 4, 2, 1, 1 voxels after the five blocks instead of vanishing. For
edges divisible by 32 this is exactly VGG's valid pooling, so the parameter
count equals the reference there.
"""

from __future__ import annotations

import keras
from keras import layers

from engine.models import common

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convolutions)
DENSE_UNITS = (256, 256)


def build(input_shape, num_classes: int, knobs: common.Knobs) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="volume")
    x = inputs
    for block, (filters, convolutions) in enumerate(BLOCKS, start=1):
        for index in range(1, convolutions + 1):
            x = layers.Conv3D(
                common.scaled(filters, knobs), 3, padding="same", name=f"block{block}_conv{index}",
                **common.weight_options(knobs, "conv"),
            )(x)
            x = common.batch_norm(x, knobs, f"block{block}_bn{index}")
            x = layers.Activation("relu", name=f"block{block}_relu{index}")(x)
        x = layers.MaxPool3D(2, padding="same", name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate(DENSE_UNITS, start=1):
        x = layers.Dense(
            common.scaled(units, knobs), activation="relu", name=f"head_dense{index}",
            **common.weight_options(knobs, "dense"),
        )(x)
        x = common.dropout(x, knobs, f"head_dropout{index}")
    outputs = common.predictions(x, num_classes, knobs)
    return keras.Model(inputs, outputs, name="vgg3d")
