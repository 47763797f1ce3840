"""Conv3D architecture presets (Keras 3 Functional API), one builder module per preset.

Importing this package never imports Keras or TensorFlow: the registry
(names, reference knobs, input checks) is plain Python so the dashboard can
use it, and the builders are imported inside ``build_model`` / ``describe``.

Every preset reproduces its reference model at width_multiplier=1 and its
default knobs; the output is one sigmoid unit for two classes (the
probability of class 1) and a softmax otherwise.
"""

from __future__ import annotations

from typing import Any

from engine.config import ModelConfig
from engine.models.builders import build_model
from engine.models.registry import (
    ARCHITECTURES,
    ArchSpec,
    InputShape,
    arch_catalog,
    architecture_names,
    check_input,
    resolve_knobs,
)

__all__ = [
    "ARCHITECTURES",
    "ArchSpec",
    "InputShape",
    "arch_catalog",
    "architecture_names",
    "build_model",
    "check_input",
    "describe",
    "resolve_knobs",
]


def describe(
    arch: str,
    input_shape: InputShape,
    num_classes: int,
    model_config: ModelConfig | None = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Parameter counts, a layer table and a rough memory estimate (JSON-ready); builds the model.

    The input is checked first, so an input that cannot work never imports Keras.
    """
    check_input(arch, input_shape, num_classes, model_config)
    from engine.models import summary

    return summary.describe(arch, input_shape, num_classes, model_config, batch_size)
