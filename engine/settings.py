"""Settings of a lab deployment, read from the environment at call time.

``CONV3D_LAB_DEMO=1`` (also ``true``/``yes``/``on``) marks a hosted demo open to
anyone: pages then show a failed run's error sentence but never its traceback or
worker log, which hold server file paths and library versions, and every launch
from the dashboard is held to ``DemoCaps`` (engine/hosting/demo.py checks them). The
dashboard also reads ``demo = true`` from ``.streamlit/secrets.toml`` and passes
it to the engine as an argument (``demo=True``): the engine itself never reads
Streamlit's secrets.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

DEMO_ENV = "CONV3D_LAB_DEMO"
# Each cap below can be overridden by CONV3D_LAB_DEMO_<FIELD IN CAPITALS>, e.g. CONV3D_LAB_DEMO_MAX_EPOCHS=5.
DEMO_CAP_ENV_PREFIX = "CONV3D_LAB_DEMO_"
_TRUE = {"1", "true", "yes", "on"}


def demo_mode(explicit: bool | None = None) -> bool:
    """Whether this lab is a hosted demo: ``explicit`` when given (the dashboard's secrets), else
    ``$CONV3D_LAB_DEMO`` is 1, true, yes or on."""
    if explicit is not None:
        return bool(explicit)
    return os.environ.get(DEMO_ENV, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class DemoCaps:
    """What one visitor of a hosted demo may ask of the server (sized for one small GPU or a few CPU cores)."""

    # Epochs of one run.
    max_epochs: int = 20
    # Largest edge of a training volume in voxels (32^3 is 8x the built-ins' 16^3).
    max_volume_edge: int = 32
    # Samples of the dataset a run trains on (the built-in digits3d has 1,797).
    max_samples: int = 2_000
    # The model's width multiplier (1.0 = the reference presets, a few hundred thousand parameters);
    # with the volume edge this bounds the parameters without building the model.
    max_width_multiplier: float = 1.0
    # Queued plus running runs of one browser session (a k-fold launch counts k).
    max_active_runs_per_session: int = 2
    # Queued plus running runs of all sessions together.
    max_active_runs_total: int = 8
    # Size of one upload on the Data page, in bytes.
    max_upload_bytes: int = 50 * 1024**2
    # Runs one visitor may launch in 24 hours (a resume is not a launch) and the minutes their runs may
    # train in 24 hours (a run that has used them up may finish; the next launch or resume is refused).
    max_runs_per_day: int = 20
    max_training_minutes_per_day: float = 60.0
    # Samples x voxels of a dataset generated inside the dashboard (the Train page's "Generate preview",
    # the Data page): the largest run the caps above allow (2,000 volumes of 32^3, 250 MiB as float32).
    max_generated_voxels: int = 2_000 * 32**3
    # Bytes one import may unpack to (an upload's archives and volumes, decompressed, as stored).
    max_import_bytes: int = 500 * 1024**2
    # Imported datasets, and the disk they take, of one visitor and of all visitors together.
    max_imports_per_visitor: int = 5
    max_import_bytes_per_visitor: int = 1024**3
    max_imports_total: int = 50
    max_import_bytes_total: int = 10 * 1024**3


def demo_caps() -> DemoCaps:
    """``DemoCaps`` with any ``$CONV3D_LAB_DEMO_<FIELD>`` overrides applied (a bad value raises ValueError)."""
    overrides = {}
    for field in dataclasses.fields(DemoCaps):
        raw = os.environ.get(DEMO_CAP_ENV_PREFIX + field.name.upper(), "").strip()
        if raw:
            kind = float if field.type in ("float", float) else int
            try:
                overrides[field.name] = kind(raw)
            except ValueError as e:
                raise ValueError(
                    f"{DEMO_CAP_ENV_PREFIX}{field.name.upper()}={raw!r} is not a number; unset it or give one."
                ) from e
    return DemoCaps(**overrides)


# The model a hosted demo offers its visitors on the Predict page: a run id, or a group id for its ensemble.
DEMO_MODEL_ENV = "CONV3D_LAB_DEMO_MODEL"


def demo_model() -> str | None:
    """``$CONV3D_LAB_DEMO_MODEL`` (e.g. "7" or "cv-1a2b3c"): the pinned model visitors land on, or None."""
    return os.environ.get(DEMO_MODEL_ENV, "").strip() or None


__all__ = ["DEMO_CAP_ENV_PREFIX", "DEMO_ENV", "DEMO_MODEL_ENV", "DemoCaps", "demo_caps", "demo_mode", "demo_model"]
