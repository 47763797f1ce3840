"""The Keras.io "3D image classification from CT scans" model.

Reference (https://keras.io/examples/vision/3D_image_classification/): at
input (128, 128, 64, 1) and two classes it has 1,352,897 parameters. Note the
reference order conv -> pool -> BatchNorm, kept here.
"""

from __future__ import annotations

import keras
from keras import layers

from engine.models import common

BLOCK_FILTERS = (64, 64, 128, 256)
DENSE_UNITS = 512


def build(input_shape, num_classes: int, knobs: common.Knobs) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="volume")
    x = inputs
    for index, filters in enumerate(BLOCK_FILTERS, start=1):
        x = common.conv_block(x, filters, knobs, index, batch_norm_after_pool=True, dropout_after=False)
    x = layers.GlobalAveragePooling3D(name="gap")(x)
    x = layers.Dense(
        common.scaled(DENSE_UNITS, knobs), activation="relu", name="head_dense",
        **common.weight_options(knobs, "dense"),
    )(x)
    x = common.dropout(x, knobs, "head_dropout")
    outputs = common.predictions(x, num_classes, knobs)
    return keras.Model(inputs, outputs, name="kerasio3d")
