"""The plain presets are composed from one block function (``engine.models.common.conv_block``).

The counts below were recorded from the presets before they shared the block (same layer names,
types and per-layer counts for each knob setting), so the refactor changed no network.
"""

from __future__ import annotations

import inspect

import pytest

from engine import models
from engine.config import ModelConfig
from engine.models import compact3d, kerasio3d, tutorial3d

PLAIN = ModelConfig(batchnorm=False, dropout_rate=0.0)
REGULARISED = ModelConfig(batchnorm=True, dropout_rate=0.3)


@pytest.mark.parametrize(
    ("arch", "shape", "classes", "config", "expected"),
    [
        ("kerasio3d", (128, 128, 64, 1), 2, ModelConfig(), 1_352_897),  # the Keras.io example's summary
        ("kerasio3d", (128, 128, 64, 1), 3, PLAIN, 1_351_875),
        ("compact3d", (32, 32, 32, 1), 2, ModelConfig(), 61_041),
        ("compact3d", (32, 32, 32, 1), 3, PLAIN, 60_555),
        ("tutorial3d", (16, 16, 16, 1), 2, ModelConfig(), 187_841),
        ("tutorial3d", (16, 16, 16, 1), 3, REGULARISED, 188_739),
    ],
)
def test_parameter_counts_are_unchanged(arch, shape, classes, config, expected):
    assert models.build_model(arch, shape, classes, config).count_params() == expected


@pytest.mark.parametrize("module", [compact3d, tutorial3d, kerasio3d])
def test_the_plain_presets_build_their_blocks_with_conv_block(module):
    source = inspect.getsource(module)
    assert "common.conv_block(" in source
    assert "layers.Conv3D(" not in source  # the block function owns the convolution


def test_kerasio3d_keeps_the_reference_order_conv_pool_batchnorm():
    model = models.build_model("kerasio3d", (48, 48, 48, 1), 2, REGULARISED)
    names = [layer.name for layer in model.layers if layer.name.startswith("block1_")]
    assert names == ["block1_conv", "block1_pool", "block1_bn"]  # no dropout inside its blocks


def test_compact3d_block_order_is_conv_batchnorm_pool_dropout():
    model = models.build_model("compact3d", (32, 32, 32, 1), 2, REGULARISED)
    names = [layer.name for layer in model.layers if layer.name.startswith("block1_")]
    assert names == ["block1_conv", "block1_bn", "block1_pool", "block1_dropout"]
