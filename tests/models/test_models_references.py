"""Each preset against its reference model at reference settings (parameter counts)."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from engine import models
from engine.config import ModelConfig


def test_kerasio3d_matches_the_keras_io_example():
    # The Keras.io CT example's model.summary(): 1,352,897 parameters at (128, 128, 64, 1).
    model = models.build_model("kerasio3d", (128, 128, 64, 1), 2)
    assert model.count_params() == 1_352_897
    assert model.get_layer("block4_pool").output.shape == (None, 6, 6, 2, 256)


def test_tutorial3d_matches_the_3d_mnist_tutorial():
    conv1 = 27 * 1 * 32 + 32  # 896
    conv2 = 27 * 32 * 64 + 64  # 55,360
    flat = 2 * 2 * 2 * 64  # 16 -> conv 14 -> pool 7 -> conv 5 -> pool 2
    dense = flat * 256 + 256  # 131,328
    out = 256 * 10 + 10  # 2,570
    assert conv1 + conv2 + dense + out == 190_154
    model = models.build_model("tutorial3d", (16, 16, 16, 1), 10)
    assert model.count_params() == 190_154
    assert not [layer for layer in model.layers if isinstance(layer, (layers.Dropout, layers.BatchNormalization))]


def _reference_vgg3d(shape, width, num_classes):
    """VGG16 in 3D as the question builds it: valid 2x pooling, Dense 256 x2 with L2 and dropout."""
    scale = lambda units: max(1, int(units * width + 0.5))  # noqa: E731
    inputs = keras.Input(shape)
    x = inputs
    for filters, convolutions in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convolutions):
            x = layers.Conv3D(scale(filters), 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPool3D(2)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(scale(256), activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4))(x)
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_vgg3d_matches_a_plain_keras_reference():
    shape, width = (32, 32, 32, 1), 0.25
    reference = _reference_vgg3d(shape, width, 3)
    model = models.build_model("vgg3d", shape, 3, ModelConfig(width_multiplier=width))
    assert model.count_params() == reference.count_params()
    # Same-padded pooling equals valid pooling on an edge divisible by 32.
    assert model.get_layer("block5_pool").output.shape == (None, 1, 1, 1, 128)  # 512 * 0.25
    assert len(model.losses) == len(reference.losses) == 2  # L2 on the two head Dense layers only


def test_vgg3d_takes_small_volumes():
    model = models.build_model("vgg3d", (16, 16, 16, 1), 10, ModelConfig(width_multiplier=0.125))
    assert [model.get_layer(f"block{b}_pool").output.shape[1] for b in range(1, 6)] == [8, 4, 2, 1, 1]


def _reference_compact3d(shape, num_classes):
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(3):
        x = layers.Conv3D(32, 3, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPool3D(2)(x)
        x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    for units in (16, 8, 4):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def test_compact3d_matches_a_plain_keras_reference():
    shape = (32, 32, 32, 1)  # 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2
    reference = _reference_compact3d(shape, 2)
    model = models.build_model("compact3d", shape, 2)
    assert model.count_params() == reference.count_params()
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 2 * 32)
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in reference.layers]


def _reference_resnet3d(shape, num_classes):
    def block(x, filters, strides):
        shortcut = x
        y = layers.Conv3D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv3D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if strides != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv3D(filters, 1, strides=strides, use_bias=False)(x)
            shortcut = layers.BatchNormalization()(shortcut)
        return layers.Activation("relu")(layers.Add()([y, shortcut]))

    inputs = keras.Input(shape)
    x = layers.Conv3D(32, 3, padding="same", use_bias=False)(inputs)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    for filters, strides in ((32, 1), (64, 2), (128, 2)):
        x = block(x, filters, strides)
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling3D()(x))
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_resnet3d_matches_a_plain_keras_reference():
    shape = (16, 16, 16, 1)
    model = models.build_model("resnet3d", shape, 4)
    assert model.count_params() == _reference_resnet3d(shape, 4).count_params()
    adds = [layer.name for layer in model.layers if isinstance(layer, layers.Add)]
    assert adds == ["stage1_add", "stage2_add", "stage3_add"]
    # Projection shortcuts only where the filters or the stride change.
    names = {layer.name for layer in model.layers}
    assert "stage1_shortcut_conv" not in names
    assert {"stage2_shortcut_conv", "stage3_shortcut_conv"} <= names
    assert model.get_layer("stage3_out").output.shape == (None, 4, 4, 4, 128)


@pytest.mark.parametrize("arch", ["resnet3d", "kerasio3d"])
def test_width_scales_the_parameter_count(arch):
    edge = max(16, models.ARCHITECTURES[arch].min_input_edge)
    counts = [
        models.build_model(arch, (edge, edge, edge, 1), 2, ModelConfig(width_multiplier=w)).count_params()
        for w in (0.25, 0.5, 1.0)
    ]
    assert counts[0] < counts[1] < counts[2]
