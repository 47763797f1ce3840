"""The plain-Python side of engine.models: registry, knobs, input checks, no TensorFlow import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import models
from engine.config import ModelConfig
from engine.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_architecture_names_in_order():
    assert models.architecture_names() == ["kerasio3d", "tutorial3d", "vgg3d", "compact3d", "resnet3d"]
    assert list(models.ARCHITECTURES) == models.architecture_names()


def test_catalog_is_plain_and_complete():
    catalog = models.arch_catalog()
    json.dumps(catalog)  # JSON-ready for the CLI and the dashboard
    assert [entry["name"] for entry in catalog] == models.architecture_names()
    for entry in catalog:
        assert entry["title"] and entry["description"]
        assert set(entry["defaults"]) == {"dropout_rate", "batchnorm", "l2", "kernel_initializer", "padding"}
        assert entry["min_input_edge"] >= 1


def test_min_input_edges_follow_the_pooling():
    edges = {entry["name"]: entry["min_input_edge"] for entry in models.arch_catalog()}
    # Valid 3x3x3 conv (n-2) then 2x pooling (n//2), counted back from one voxel:
    # kerasio3d 1<-2<-4<-8<-10<-20<-22<-44<-46; tutorial3d 1<-2<-4<-8<-10; compact3d ...<-22.
    assert edges == {"kerasio3d": 46, "tutorial3d": 10, "vgg3d": 1, "compact3d": 22, "resnet3d": 1}


def test_reference_defaults():
    defaults = {name: spec.defaults for name, spec in models.ARCHITECTURES.items()}
    assert defaults["kerasio3d"] == {"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "glorot_uniform", "padding": "valid"}
    assert defaults["tutorial3d"] == {"dropout_rate": 0.0, "batchnorm": False, "l2": 0.0, "kernel_initializer": "he_uniform", "padding": "valid"}
    assert defaults["vgg3d"] == {"dropout_rate": 0.5, "batchnorm": True, "l2": 1e-4, "kernel_initializer": "glorot_uniform", "padding": "same"}
    assert defaults["compact3d"] == {"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "glorot_uniform", "padding": "valid"}
    assert defaults["resnet3d"] == {"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "he_normal", "padding": "same"}


def test_resolve_knobs_fills_none_with_preset_defaults():
    knobs = models.resolve_knobs("tutorial3d", ModelConfig())
    assert knobs == {
        "width_multiplier": 1.0,
        "dropout_rate": 0.0,
        "batchnorm": False,
        "batchnorm_momentum": 0.99,
        "l2": 0.0,
        "l2_scope": "all",
        "kernel_initializer": "he_uniform",
        "padding": "valid",
    }
    assert models.resolve_knobs("tutorial3d", None) == knobs


def test_resolve_knobs_keeps_set_values():
    config = ModelConfig(
        width_multiplier=0.5, dropout_rate=0.2, batchnorm=False, batchnorm_momentum=0.9, l2=1e-3,
        kernel_initializer="he_normal",
    )
    knobs = models.resolve_knobs("kerasio3d", config)
    assert knobs == {
        "width_multiplier": 0.5,
        "dropout_rate": 0.2,
        "batchnorm": False,
        "batchnorm_momentum": 0.9,
        "l2": 1e-3,
        "l2_scope": "all",
        "kernel_initializer": "he_normal",
        "padding": "valid",
    }


def test_vgg_default_l2_is_head_only_until_set():
    assert models.resolve_knobs("vgg3d", ModelConfig())["l2_scope"] == "head"
    assert models.resolve_knobs("vgg3d", ModelConfig(l2=1e-4))["l2_scope"] == "all"


def test_zero_knobs_are_not_replaced_by_defaults():
    knobs = models.resolve_knobs("kerasio3d", ModelConfig(dropout_rate=0.0, batchnorm=False, l2=0.0))
    assert knobs["dropout_rate"] == 0.0 and knobs["batchnorm"] is False and knobs["l2"] == 0.0


def test_too_small_input_is_a_readable_config_error():
    with pytest.raises(ConfigError) as caught:
        models.check_input("kerasio3d", (32, 32, 32, 1), 2)
    message = str(caught.value)
    assert "(32, 32, 32, 1)" in message and "kerasio3d" in message and "46" in message
    # It names the presets that would take this volume.
    assert "tutorial3d" in message and "resnet3d" in message


def test_one_short_edge_is_enough_to_fail():
    with pytest.raises(ConfigError, match="smallest here is 20"):
        models.check_input("kerasio3d", (128, 128, 20, 1), 2)


@pytest.mark.parametrize("arch", ["kerasio3d", "tutorial3d", "compact3d"])
def test_min_edge_is_accepted_and_one_less_is_not(arch):
    edge = models.ARCHITECTURES[arch].min_input_edge
    assert models.check_input(arch, (edge, edge, edge, 1), 2) == (edge, edge, edge, 1)
    with pytest.raises(ConfigError):
        models.check_input(arch, (edge - 1, edge, edge, 1), 2)


@pytest.mark.parametrize(
    "arch, shape, classes, fragment",
    [
        ("nope3d", (16, 16, 16, 1), 2, "valid architectures are"),
        ("tutorial3d", (16, 16, 16), 2, "four positive whole numbers"),
        ("tutorial3d", (16, 16, 0, 1), 2, "four positive whole numbers"),
        ("tutorial3d", (16, 16, 16, 1), 1, "at least 2"),
    ],
)
def test_other_bad_inputs(arch, shape, classes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        models.check_input(arch, shape, classes)


def test_numpy_integers_are_accepted():
    numpy = pytest.importorskip("numpy")
    shape = tuple(numpy.array([16, 16, 16, 1]))
    assert models.check_input("tutorial3d", shape, numpy.int64(3)) == (16, 16, 16, 1)


def test_bad_width_multiplier():
    with pytest.raises(ConfigError, match="width_multiplier"):
        models.resolve_knobs("tutorial3d", ModelConfig(width_multiplier=0))


def test_importing_the_registry_does_not_import_tensorflow():
    # The dashboard imports engine.models; a too-small input must fail before Keras is loaded too.
    code = (
        "import sys, engine.models as m\n"
        "m.arch_catalog(); m.resolve_knobs('vgg3d', None)\n"
        "try:\n"
        "    m.build_model('kerasio3d', (8, 8, 8, 1), 2)\n"
        "except m.registry.ConfigError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no ConfigError')\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_same_padding_lets_deep_presets_take_small_volumes():
    with pytest.raises(ConfigError, match="model.padding to 'same'"):
        models.check_input("kerasio3d", (32, 32, 32, 1), 2)
    same = ModelConfig(architecture="kerasio3d", padding="same")
    assert models.check_input("kerasio3d", (32, 32, 32, 1), 2, same) == (32, 32, 32, 1)
    assert models.ARCHITECTURES["kerasio3d"].min_edge("same") == 16


# ------------------------------------------------------- absurd input shapes
def test_an_input_whose_first_layer_cannot_fit_is_refused_before_keras():
    import time

    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"too large for kerasio3d: its first convolution alone needs .* TiB"):
        models.check_input("kerasio3d", (100000, 100000, 100000, 1), 2)
    assert time.perf_counter() - started < 1.0
    # The bound is the first convolution's float32 output: 14^3 voxels x 32 filters x 4 bytes x batch 8.
    assert models.registry.first_layer_bytes("tutorial3d", (16, 16, 16, 1), batch_size=8) == 14**3 * 32 * 4 * 8
    same = ModelConfig(architecture="kerasio3d", padding="same", width_multiplier=0.5)
    assert models.registry.first_layer_bytes("kerasio3d", (16, 16, 16, 1), same) == 16**3 * 32 * 4


def test_a_batch_that_cannot_fit_is_a_batch_size_problem():
    shape = (64, 64, 64, 1)
    one = models.registry.first_layer_bytes("tutorial3d", shape)
    assert models.check_input("tutorial3d", shape, 2, batch_size=4, memory_bytes=4 * one) == shape
    with pytest.raises(ConfigError) as caught:
        models.check_input("tutorial3d", shape, 2, batch_size=5, memory_bytes=4 * one)
    assert caught.value.problems[0].field == "training.batch_size"
    assert "for a batch of 5" in caught.value.problems[0].message


def test_first_filters_match_the_builders():
    for arch in models.architecture_names():
        info = models.describe(arch, (24, 24, 24, 1), 2, ModelConfig(architecture=arch, padding="same")
                               if "same" in models.ARCHITECTURES[arch].paddings else None)
        first_conv = next(row for row in info["layers"] if row["type"] == "Conv3D")
        assert first_conv["output_shape"][-1] == models.ARCHITECTURES[arch].first_filters, arch


def test_the_number_of_classes_is_bounded():
    with pytest.raises(ConfigError, match="at most 100,000"):
        models.check_input("tutorial3d", (16, 16, 16, 1), 10**20)
