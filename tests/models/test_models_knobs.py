"""Knobs, the output head rule, layer names and a forward pass, on tiny volumes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from engine import models
from engine.config import ModelConfig
from engine.errors import ConfigError

ARCHS = ["kerasio3d", "tutorial3d", "vgg3d", "compact3d", "resnet3d"]
# Narrow models keep these tests fast; kerasio3d needs 46 voxels per edge.
SMALL = ModelConfig(width_multiplier=0.125)


def small_shape(arch: str) -> tuple[int, int, int, int]:
    edge = max(16, models.ARCHITECTURES[arch].min_input_edge)
    return (edge, edge, edge, 1)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


@pytest.mark.parametrize("arch", ARCHS)
def test_two_classes_give_one_sigmoid_unit(arch):
    output = models.build_model(arch, small_shape(arch), 2, SMALL).get_layer("predictions")
    assert output.units == 1 and output.activation is keras.activations.sigmoid


@pytest.mark.parametrize("arch", ARCHS)
def test_more_classes_give_a_softmax(arch):
    output = models.build_model(arch, small_shape(arch), 10, SMALL).get_layer("predictions")
    assert output.units == 10 and output.activation is keras.activations.softmax


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("num_classes", [2, 3])
def test_forward_pass_gives_probabilities(arch, num_classes):
    model = models.build_model(arch, small_shape(arch), num_classes, SMALL)
    volumes = np.random.default_rng(0).random((2, *small_shape(arch)), dtype=np.float32)
    probabilities = keras.ops.convert_to_numpy(model(volumes, training=False))
    assert probabilities.shape == (2, 1 if num_classes == 2 else num_classes)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    if num_classes > 2:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_grad_cam_layer_exists_and_is_a_feature_map(arch):
    model = models.build_model(arch, small_shape(arch), 2, SMALL)
    assert len(model.get_layer(models.ARCHITECTURES[arch].last_conv_layer).output.shape) == 5


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_names_are_stable(arch):
    first = [layer.name for layer in models.build_model(arch, small_shape(arch), 2, SMALL).layers]
    second = [layer.name for layer in models.build_model(arch, small_shape(arch), 2, SMALL).layers]
    assert first == second and first[0] == "volume" and first[-1] == "predictions"


@pytest.mark.parametrize("arch", ARCHS)
def test_dropout_layers_follow_the_rate(arch):
    without = models.build_model(arch, small_shape(arch), 2, ModelConfig(width_multiplier=0.125, dropout_rate=0.0))
    with_dropout = models.build_model(arch, small_shape(arch), 2, ModelConfig(width_multiplier=0.125, dropout_rate=0.4))
    assert layers_of(without, layers.Dropout) == []
    rates = {layer.rate for layer in layers_of(with_dropout, layers.Dropout)}
    assert rates == {0.4}
    assert without.count_params() == with_dropout.count_params()


def test_tutorial_dropout_variant_sits_after_each_pooling_layer():
    model = models.build_model("tutorial3d", (16, 16, 16, 1), 10, ModelConfig(dropout_rate=0.5))
    names = [layer.name for layer in model.layers]
    assert names[names.index("block1_pool") + 1] == "block1_dropout"
    assert names[names.index("block2_pool") + 1] == "block2_dropout"


@pytest.mark.parametrize("arch", ARCHS)
def test_batchnorm_toggle_and_momentum(arch):
    on = models.build_model(arch, small_shape(arch), 2, ModelConfig(width_multiplier=0.125, batchnorm=True, batchnorm_momentum=0.9))
    off = models.build_model(arch, small_shape(arch), 2, ModelConfig(width_multiplier=0.125, batchnorm=False))
    assert layers_of(off, layers.BatchNormalization) == []
    norms = layers_of(on, layers.BatchNormalization)
    assert norms and {layer.momentum for layer in norms} == {0.9}
    assert on.count_params() != off.count_params()


def test_tutorial_batchnorm_follows_each_conv():
    model = models.build_model("tutorial3d", (16, 16, 16, 1), 10, ModelConfig(batchnorm=True))
    names = [layer.name for layer in model.layers]
    assert names[names.index("block1_conv") + 1] == "block1_bn"
    assert names[names.index("block2_conv") + 1] == "block2_bn"
    # 2 x (4 x filters) BatchNorm parameters on top of the 190,154 of the reference.
    assert model.count_params() == 190_154 + 4 * 32 + 4 * 64


def test_width_multiplier_scales_filters_and_units():
    model = models.build_model("kerasio3d", (46, 46, 46, 1), 2, ModelConfig(width_multiplier=0.5))
    assert model.get_layer("block1_conv").filters == 32
    assert model.get_layer("block4_conv").filters == 128
    assert model.get_layer("head_dense").units == 256
    assert model.get_layer("predictions").units == 1  # the output is never scaled
    tiny = models.build_model("compact3d", (22, 22, 22, 1), 2, ModelConfig(width_multiplier=0.01))
    assert tiny.get_layer("head_dense3").units == 1  # rounded, at least one


@pytest.mark.parametrize("arch", ["kerasio3d", "tutorial3d", "compact3d", "resnet3d"])
def test_l2_regularizes_every_conv_and_dense_kernel(arch):
    plain = models.build_model(arch, small_shape(arch), 2, SMALL)
    assert plain.losses == []
    model = models.build_model(arch, small_shape(arch), 2, ModelConfig(width_multiplier=0.125, l2=1e-3))
    kernels = layers_of(model, (layers.Conv3D, layers.Dense))
    assert all(layer.kernel_regularizer is not None for layer in kernels)
    assert len(model.losses) == len(kernels)


def test_vgg3d_default_l2_is_on_the_head_and_a_set_l2_everywhere():
    default = models.build_model("vgg3d", (16, 16, 16, 1), 2, SMALL)
    regularized = [layer.name for layer in layers_of(default, (layers.Conv3D, layers.Dense)) if layer.kernel_regularizer]
    assert regularized == ["head_dense1", "head_dense2"]
    assert default.get_layer("head_dense1").kernel_regularizer.l2 == pytest.approx(1e-4)
    everywhere = models.build_model("vgg3d", (16, 16, 16, 1), 2, ModelConfig(width_multiplier=0.125, l2=1e-4))
    assert len(everywhere.losses) == 13 + 3  # 13 convolutions, 2 head Dense, the output


def test_kernel_initializer_defaults_and_override():
    tutorial = models.build_model("tutorial3d", (16, 16, 16, 1), 10)
    assert type(tutorial.get_layer("block1_conv").kernel_initializer).__name__ == "HeUniform"
    resnet = models.build_model("resnet3d", (16, 16, 16, 1), 2, SMALL)
    assert type(resnet.get_layer("stage2_conv1").kernel_initializer).__name__ == "HeNormal"
    override = models.build_model("tutorial3d", (16, 16, 16, 1), 10, ModelConfig(kernel_initializer="glorot_normal"))
    kernels = layers_of(override, (layers.Conv3D, layers.Dense))
    assert {type(layer.kernel_initializer).__name__ for layer in kernels} == {"GlorotNormal"}


def test_build_model_rejects_a_too_small_volume_with_a_sentence():
    with pytest.raises(ConfigError) as caught:
        models.build_model("compact3d", (16, 16, 16, 1), 2)
    assert "compact3d" in str(caught.value) and "at least 22 voxels" in str(caught.value)
    assert caught.value.problems and caught.value.messages[0].endswith(".")
