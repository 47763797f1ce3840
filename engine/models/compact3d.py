"""The compact network of the small CT question (validation accuracy 1.0, one class predicted).

Three blocks of Conv3D(32, valid) -> BatchNorm -> MaxPool -> Dropout, then
Flatten -> Dropout -> Dense 16 -> BN -> Dense 8 -> BN -> Dense 4 -> BN -> output.
"""

from __future__ import annotations

import keras
from keras import layers

from engine.models import common

BLOCK_FILTERS = (32, 32, 32)
DENSE_UNITS = (16, 8, 4)


def build(input_shape, num_classes: int, knobs: common.Knobs) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="volume")
    x = inputs
    for index, filters in enumerate(BLOCK_FILTERS, start=1):
        x = common.conv_block(x, filters, knobs, index)
    x = layers.Flatten(name="flatten")(x)
    x = common.dropout(x, knobs, "flatten_dropout")
    for index, units in enumerate(DENSE_UNITS, start=1):
        x = layers.Dense(
            common.scaled(units, knobs), activation="relu", name=f"head_dense{index}",
            **common.weight_options(knobs, "dense"),
        )(x)
        x = common.batch_norm(x, knobs, f"head_bn{index}")
    outputs = common.predictions(x, num_classes, knobs)
    return keras.Model(inputs, outputs, name="compact3d")
