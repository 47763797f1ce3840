"""describe(): parameter counts, the layer table and the memory estimate."""

from __future__ import annotations

import json
import math

from engine import models
from engine.config import ModelConfig


def test_describe_is_consistent_with_the_model():
    config = ModelConfig(width_multiplier=0.25)
    summary = models.describe("compact3d", (32, 32, 32, 1), 3, config, batch_size=8)
    json.dumps(summary)
    model = models.build_model("compact3d", (32, 32, 32, 1), 3, config)

    assert summary["architecture"] == "compact3d"
    assert summary["params"] == model.count_params() == sum(row["params"] for row in summary["layers"])
    # BatchNorm moving statistics are not trainable.
    assert summary["trainable_params"] < summary["params"]
    assert [row["name"] for row in summary["layers"]] == [layer.name for layer in model.layers]
    first, last = summary["layers"][0], summary["layers"][-1]
    assert first == {"name": "volume", "type": "InputLayer", "output_shape": [None, 32, 32, 32, 1], "params": 0}
    assert last["name"] == "predictions" and last["output_shape"] == [None, 3]
    assert summary["last_conv_layer"] == "block3_conv"
    assert summary["knobs"] == models.resolve_knobs("compact3d", config)


def test_describe_memory_estimate():
    summary = models.describe("tutorial3d", (16, 16, 16, 1), 10, batch_size=4)
    values = sum(math.prod(row["output_shape"][1:]) for row in summary["layers"])
    assert summary["activation_bytes_per_sample"] == 4 * values
    assert summary["estimated_training_bytes"] == summary["params"] * 16 + summary["activation_bytes_per_sample"] * 4 * 2
    assert summary["params"] == summary["trainable_params"] == 190_154


def test_describe_kerasio3d_reference():
    summary = models.describe("kerasio3d", (128, 128, 64, 1), 2)
    assert summary["params"] == 1_352_897
    rows = {row["name"]: row for row in summary["layers"]}
    assert rows["block1_conv"] == {"name": "block1_conv", "type": "Conv3D", "output_shape": [None, 126, 126, 62, 64], "params": 1792}
    assert rows["head_dense"]["params"] == 256 * 512 + 512
