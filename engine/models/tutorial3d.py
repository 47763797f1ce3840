"""The Conv3D network of the 3D MNIST Keras tutorial.

Conv3D(32) -> MaxPool -> Conv3D(64) -> MaxPool -> Flatten -> Dense(256) -> output,
he_uniform kernels. The tutorial's variant with Dropout(0.5) after each pooling
layer is dropout_rate=0.5; BatchNorm (off in the reference) goes after each conv.
"""

from __future__ import annotations

import keras
from keras import layers

from engine.models import common

BLOCK_FILTERS = (32, 64)
DENSE_UNITS = 256


def build(input_shape, num_classes: int, knobs: common.Knobs) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="volume")
    x = inputs
    for index, filters in enumerate(BLOCK_FILTERS, start=1):
        x = common.conv_block(x, filters, knobs, index)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(
        common.scaled(DENSE_UNITS, knobs), activation="relu", name="head_dense",
        **common.weight_options(knobs, "dense"),
    )(x)
    outputs = common.predictions(x, num_classes, knobs)
    return keras.Model(inputs, outputs, name="tutorial3d")
