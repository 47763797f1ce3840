"""``build_model``: a preset's Keras model for an input shape (imports Keras only when called)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from engine.config import ModelConfig
from engine.models.registry import ARCHITECTURES, InputShape, check_input, resolve_knobs

if TYPE_CHECKING:
    import keras


def build_model(
    arch: str,
    input_shape: InputShape,
    num_classes: int,
    model_config: ModelConfig | None = None,
) -> "keras.Model":
    """Build preset ``arch`` for volumes of ``input_shape`` (depth, height, width, channels).

    Raises ``ConfigError`` (before any Keras code runs) for an unknown
    architecture, fewer than two classes, or a volume too small for the
    preset's pooling.
    """
    shape = check_input(arch, input_shape, num_classes, model_config)
    knobs = resolve_knobs(arch, model_config)
    builder = importlib.import_module(f"engine.models.{ARCHITECTURES[arch].builder}")
    return builder.build(shape, int(num_classes), knobs)
