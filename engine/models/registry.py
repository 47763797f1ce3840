"""The architecture registry: names, reference knobs and input-size checks.

Plain Python on purpose: the dashboard imports this module to fill its forms
and validate a configuration, and must never import TensorFlow. The Keras
builders live in one module per preset and are imported only when a model is
built.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from engine.machine import memory
from engine.config import LIMITS, PADDINGS, ModelConfig
from engine.errors import ConfigError, Problem

InputShape = tuple[int, int, int, int]  # (depth, height, width, channels)
# More classes than this is a mistake (the output layer alone would dwarf the model).
MAX_CLASSES = 100_000

# How each spatial edge changes through a preset, one step per shrinking layer:
# "conv3" is a valid-padded 3x3x3 convolution (n - 2), "pool2" a valid 2x max
# pooling (floor(n / 2)), "halve" a same-padded pooling or stride-2 convolution
# (ceil(n / 2), which never drops below one voxel).
_CONV3 = "conv3"
_POOL2 = "pool2"
_HALVE = "halve"


def _edge_after(steps: tuple[str, ...], edge: int) -> int:
    """The length of one spatial edge after ``steps``; 0 once it has vanished."""
    for step in steps:
        if step == _CONV3:
            edge -= 2
        elif step == _POOL2:
            edge //= 2
        else:
            edge = math.ceil(edge / 2)
        if edge < 1:
            return 0
    return edge


def _smallest_edge(steps: tuple[str, ...]) -> int:
    edge = 1
    while _edge_after(steps, edge) < 1:
        edge += 1
    return edge


@dataclass(frozen=True)
class ArchSpec:
    name: str
    title: str
    # One or two sentences naming the reference model.
    description: str
    # The reference values of the knobs: dropout_rate, batchnorm, l2, kernel_initializer.
    defaults: dict[str, Any]
    # The layer whose output Grad-CAM weighs (a 5D feature map).
    last_conv_layer: str
    # Module under engine.models with ``build(input_shape, num_classes, knobs)``.
    builder: str
    # The shrinking layers along one spatial edge (see _edge_after).
    spatial_steps: tuple[str, ...] = field(repr=False, default=())
    # Where the default L2 applies: "all" conv and dense kernels, or "head"
    # (the hidden Dense layers only, as in the VGG reference). A value the user
    # sets always applies to every conv and dense kernel.
    default_l2_scope: str = "all"
    # The convolution paddings the builder honours; a preset with one fixed padding does not offer the knob.
    paddings: tuple[str, ...] = PADDINGS
    # Filters of the first convolution at width 1 (a 3x3x3 conv, stride 1): the analytic memory bound.
    first_filters: int = 32

    @property
    def min_input_edge(self) -> int:
        """The smallest spatial edge (in voxels) the preset's pooling can take at its reference padding."""
        return self.min_edge(self.defaults.get("padding", "same"))

    def min_edge(self, padding: str) -> int:
        """The smallest spatial edge for ``padding``: "same" convolutions do not shrink the volume."""
        steps = self.spatial_steps if padding == "valid" else tuple(s for s in self.spatial_steps if s != _CONV3)
        return _smallest_edge(steps)


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            name="kerasio3d",
            title="Keras.io CT-scan 3D CNN",
            description=(
                "The model of the Keras.io example '3D image classification from CT scans': four "
                "Conv3D blocks (64-64-128-256 filters) with max pooling and BatchNorm, global average "
                "pooling, Dense 512 and dropout 0.3."
            ),
            defaults={"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "glorot_uniform",
                      "padding": "valid"},
            last_conv_layer="block4_conv",
            builder="kerasio3d",
            first_filters=64,
            spatial_steps=(_CONV3, _POOL2) * 4,
        ),
        ArchSpec(
            name="tutorial3d",
            title="3D MNIST tutorial CNN",
            description=(
                "The network of the 3D MNIST Conv3D Keras tutorial: two Conv3D + max-pooling blocks "
                "(32 and 64 filters, he_uniform), Flatten and Dense 256; a dropout rate above 0 adds the "
                "tutorial's dropout after each pooling layer (it used 0.5)."
            ),
            defaults={"dropout_rate": 0.0, "batchnorm": False, "l2": 0.0, "kernel_initializer": "he_uniform",
                      "padding": "valid"},
            last_conv_layer="block2_conv",
            builder="tutorial3d",
            spatial_steps=(_CONV3, _POOL2) * 2,
        ),
        ArchSpec(
            name="vgg3d",
            title="VGG-style 3D CNN",
            description=(
                "VGG16 in 3D, the 'VGG-like net' of the mammography cross-validation question: five blocks "
                "of 2-2-3-3-3 same-padded 3x3x3 convolutions (64 to 512 filters) with BatchNorm and max "
                "pooling, then two Dense 256 layers with L2 1e-4 and dropout 0.5."
            ),
            defaults={"dropout_rate": 0.5, "batchnorm": True, "l2": 1e-4, "kernel_initializer": "glorot_uniform",
                      "padding": "same"},
            last_conv_layer="block5_relu3",
            builder="vgg3d",
            first_filters=64,
            # Same-padded pooling: a small volume keeps at least one voxel.
            spatial_steps=(_HALVE,) * 5,
            default_l2_scope="head",
            paddings=("same",),
        ),
        ArchSpec(
            name="compact3d",
            title="Compact 3D CNN",
            description=(
                "The small network of the CT question whose validation accuracy was 1.0: three blocks of "
                "Conv3D(32) + BatchNorm + max pooling + dropout, then a Dense 16-8-4 head with BatchNorm."
            ),
            defaults={"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "glorot_uniform",
                      "padding": "valid"},
            last_conv_layer="block3_conv",
            builder="compact3d",
            spatial_steps=(_CONV3, _POOL2) * 3,
        ),
        ArchSpec(
            name="resnet3d",
            title="Small 3D ResNet",
            description=(
                "A modern baseline rather than a published model: a 3D ResNet with one residual block per "
                "stage at 32, 64 and 128 filters, stride-2 downsampling between stages, global average "
                "pooling and dropout 0.3."
            ),
            defaults={"dropout_rate": 0.3, "batchnorm": True, "l2": 0.0, "kernel_initializer": "he_normal",
                      "padding": "same"},
            last_conv_layer="stage3_out",
            builder="resnet3d",
            spatial_steps=(_HALVE,) * 2,
            paddings=("same",),
        ),
    )
}


def architecture_names() -> list[str]:
    return list(ARCHITECTURES)


def arch_catalog() -> list[dict[str, Any]]:
    """One plain dict per preset, for forms and ``python -m engine archs``."""
    return [
        {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "defaults": dict(spec.defaults),
            "min_input_edge": spec.min_input_edge,
            "last_conv_layer": spec.last_conv_layer,
            "paddings": list(spec.paddings),
        }
        for spec in ARCHITECTURES.values()
    ]


def get_spec(arch: str) -> ArchSpec:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ConfigError([Problem(
            "model.architecture", f"model.architecture is {arch!r}; valid architectures are {', '.join(ARCHITECTURES)}."
        )]) from None


def resolve_knobs(arch: str, model_config: ModelConfig | None = None) -> dict[str, Any]:
    """The knobs a builder uses: the config's values, with None replaced by the preset's reference value."""
    spec = get_spec(arch)
    config = model_config if model_config is not None else ModelConfig(architecture=arch)
    width = config.width_multiplier
    problem = LIMITS["model.width_multiplier"].problem("model.width_multiplier", width)
    if problem:
        raise ConfigError([problem])

    def pick(name: str):
        value = getattr(config, name)
        return spec.defaults[name] if value is None else value

    return {
        "width_multiplier": float(width),
        "dropout_rate": float(pick("dropout_rate")),
        "batchnorm": bool(pick("batchnorm")),
        "batchnorm_momentum": float(config.batchnorm_momentum),
        "l2": float(pick("l2")),
        "l2_scope": spec.default_l2_scope if config.l2 is None else "all",
        "kernel_initializer": str(pick("kernel_initializer")),
        "padding": str(pick("padding")),
    }


def first_layer_bytes(arch: str, input_shape: InputShape, model_config: ModelConfig | None = None,
                      batch_size: int = 1) -> int:
    """The float32 output of the preset's first convolution for one batch: a lower bound of its training memory.

    Every preset starts with a 3x3x3 stride-1 convolution of ``first_filters``
    (times the width multiplier); "valid" padding trims one voxel per side.
    """
    spec = get_spec(arch)
    knobs = resolve_knobs(arch, model_config)
    filters = max(1, int(spec.first_filters * knobs["width_multiplier"] + 0.5))  # as common.scaled rounds
    trim = 2 if knobs["padding"] == "valid" else 0
    voxels = math.prod(max(1, int(edge) - trim) for edge in input_shape[:3])
    return voxels * filters * memory.BYTES_PER_FLOAT * max(1, int(batch_size))


def _too_large(arch, shape, model_config, batch_size, memory_bytes) -> Problem | None:
    """A problem when the first layer's activations alone exceed the device memory (analytic, no Keras)."""
    if memory_bytes is None:
        device, memory_bytes = memory.device_memory()
    else:
        device = "the device"
    if not memory_bytes:
        return None
    needed = first_layer_bytes(arch, shape, model_config, batch_size)
    if needed <= memory_bytes:
        return None
    batch = f" for a batch of {batch_size}" if batch_size > 1 else " for one volume"
    one_fits = first_layer_bytes(arch, shape, model_config, 1) <= memory_bytes
    return Problem(
        "training.batch_size" if one_fits else "data.dataset",
        f"The input shape {shape} is too large for {arch}: its first convolution alone needs "
        f"{memory.format_bytes(needed)}{batch}, more than {device}'s {memory.format_bytes(memory_bytes)}. "
        "Resample the volumes smaller, or lower the batch size or the width multiplier.",
    )


def check_input(
    arch: str,
    input_shape,
    num_classes: int,
    model_config: ModelConfig | None = None,
    *,
    batch_size: int = 1,
    memory_bytes: int | None = None,
) -> InputShape:
    """Raise ``ConfigError`` when a preset cannot take this input; return the shape as a tuple of ints.

    Runs before any Keras code so a too-small volume gives a sentence, not a traceback, and so
    does one whose first layer's activations (``batch_size`` volumes) cannot fit the device
    memory (``memory_bytes``; default ``engine.machine.memory.device_memory()``): building such a model
    took TensorFlow 14 s before it ran out of memory.
    """
    spec = get_spec(arch)
    padding = (model_config.padding if model_config is not None else None) or spec.defaults.get("padding", "same")
    min_edge = spec.min_edge(padding)
    problems: list[Problem] = []
    if padding not in spec.paddings:
        problems.append(Problem(
            "model.padding",
            f"model.padding is {padding!r}; {arch} always uses {' or '.join(repr(p) for p in spec.paddings)} "
            "padding, so leave it unset.",
        ))
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    # numpy integers (from an array's .shape arithmetic) count as whole numbers too.
    if len(shape) != 4 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape):
        problems.append(Problem(
            "data.dataset",
            f"The input shape {input_shape!r} is not (depth, height, width, channels) with four positive whole numbers.",
        ))
    else:
        shape = tuple(int(n) for n in shape)
    if len(shape) == 4 and not problems and min(shape[:3]) < min_edge:
        smallest = min(shape[:3])
        fitting = [s.name for s in ARCHITECTURES.values() if s.min_input_edge <= smallest]
        alternative = f" or choose {', '.join(fitting)}" if fitting else ""
        if padding == "valid" and spec.min_edge("same") <= smallest:
            alternative += ", or set model.padding to 'same'"
        problems.append(Problem(
            "model.architecture",
            f"The input shape {shape} is too small for the {arch} architecture: its pooling needs every "
            f"spatial edge to be at least {min_edge} voxels, and the smallest here is {smallest}. "
            f"Resample the volumes to at least {min_edge} voxels per edge{alternative}.",
        ))
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        problems.append(Problem(
            "data.dataset", f"The number of classes is {num_classes!r}; a classifier needs at least 2."
        ))
    elif num_classes > MAX_CLASSES:
        problems.append(Problem(
            "data.dataset", f"The number of classes is {num_classes}; the lab handles at most {MAX_CLASSES:,}."
        ))
    if len(shape) == 4 and not problems:
        too_large = _too_large(arch, shape, model_config, batch_size, memory_bytes)
        if too_large:
            problems.append(too_large)
    if problems:
        raise ConfigError(problems)
    return shape
