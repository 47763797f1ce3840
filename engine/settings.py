"""Settings of a lab deployment: the hosted demo's flag, caps and pinned model, read at call time from ONE
list of sources with ONE precedence (``demo_settings``).

Each setting has a secrets key and an environment variable; the first source that sets it wins:

1. the dashboard's secrets (``.streamlit/secrets.toml``): ``demo = true``, ``demo_max_epochs = 5``,
   ``demo_model = "7"``, ... (the key is the variable's name, lower case, without ``CONV3D_LAB_``);
2. the environment: ``CONV3D_LAB_DEMO=1``, ``CONV3D_LAB_DEMO_MAX_EPOCHS=5``, ``CONV3D_LAB_DEMO_MODEL=7``, ...;
3. the default (no demo; the ``DemoCaps`` defaults below; no pinned model).

A yes/no is true for 1, true, yes or on. The engine never imports Streamlit: the dashboard hands its
secrets over (``dashboard_secrets``; ui/access.py does it on each script run) for the engine calls made in
that script run; the CLI and the workers read the environment only.

A hosted demo is open to anyone: pages show a failed run's error sentence but never its traceback or
worker log (server file paths and library versions), and every launch from the dashboard is held to
``DemoCaps`` (engine/hosting/demo.py checks them). docs/hosting.md lists the settings.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import LabError

# The prefix of every environment variable; a secrets key is the name without it, lower case (secret_key()).
ENV_PREFIX = "CONV3D_LAB_"
DEMO_ENV = "CONV3D_LAB_DEMO"
# Each cap below can be overridden by CONV3D_LAB_DEMO_<FIELD IN CAPITALS>, e.g. CONV3D_LAB_DEMO_MAX_EPOCHS=5
# (in the secrets: demo_max_epochs = 5).
DEMO_CAP_ENV_PREFIX = "CONV3D_LAB_DEMO_"
# The model a hosted demo offers its visitors on the Predict page: a run id, or a group id for its ensemble.
DEMO_MODEL_ENV = "CONV3D_LAB_DEMO_MODEL"
_TRUE = {"1", "true", "yes", "on"}

# The dashboard's secrets for the engine calls of the current script run. A context variable: each Streamlit
# script run is a thread of its own, so nothing outside the dashboard's script runs ever sees them.
_SECRETS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("conv3d_lab_secrets", default={})


def secret_key(env_name: str) -> str:
    """The secrets key of a setting: "CONV3D_LAB_DEMO_MAX_EPOCHS" -> "demo_max_epochs"."""
    return env_name.removeprefix(ENV_PREFIX).lower()


def dashboard_secrets(secrets: Mapping[str, Any]) -> None:
    """Hand the dashboard's secrets (plain top-level values) to the settings read in this script run."""
    _SECRETS.set(dict(secrets))


def _raw(env_name: str, secrets: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The first source's value of a setting as text, and where it was set (for a sentence); None when unset."""
    value = secrets.get(secret_key(env_name))
    if value is not None and str(value).strip() != "":
        return str(value).strip(), f"{secret_key(env_name)} in the secrets"
    value = environ.get(env_name, "").strip()
    return (value, env_name) if value else None


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


@dataclass(frozen=True)
class DemoSettings:
    """Everything about the hosted demo, from one read of the sources (see the module's docstring)."""

    enabled: bool = False
    caps: DemoCaps = DemoCaps()
    # demo_model / $CONV3D_LAB_DEMO_MODEL ("7" or "cv-1a2b3c"): the pinned model visitors land on, or None.
    model: str | None = None


def demo_settings(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> DemoSettings:
    """The demo's flag, caps and model: per setting, the secrets (``secrets``, default: the dashboard's of
    this script run), else the environment (``environ``, default ``os.environ``), else the default. A cap
    that is not a number raises ``LabError`` (a ValueError) with a sentence naming where it was set."""
    secrets = _SECRETS.get() if secrets is None else secrets
    environ = os.environ if environ is None else environ
    enabled = _raw(DEMO_ENV, secrets, environ)
    model = _raw(DEMO_MODEL_ENV, secrets, environ)
    overrides: dict[str, Any] = {}
    for field in dataclasses.fields(DemoCaps):
        found = _raw(DEMO_CAP_ENV_PREFIX + field.name.upper(), secrets, environ)
        if found is not None:
            raw, where = found
            kind = float if field.type in ("float", float) else int
            try:
                overrides[field.name] = kind(raw)
            except ValueError as e:
                raise LabError(f"The hosted demo's setting {where} is {raw!r}, not a number; remove it or give "
                               "one.") from e
    return DemoSettings(
        enabled=enabled is not None and enabled[0].lower() in _TRUE,
        caps=DemoCaps(**overrides),
        model=model[0] if model is not None else None,
    )


def demo_mode(explicit: bool | None = None) -> bool:
    """Whether this lab is a hosted demo: ``explicit`` when given (what the dashboard passes), else
    ``demo_settings().enabled``."""
    if explicit is not None:
        return bool(explicit)
    return demo_settings().enabled


def demo_caps() -> DemoCaps:
    """``demo_settings().caps``: ``DemoCaps`` with the secrets' and the environment's overrides applied."""
    return demo_settings().caps


def demo_model() -> str | None:
    """``demo_settings().model``: the pinned model visitors land on, or None."""
    return demo_settings().model


__all__ = ["DEMO_CAP_ENV_PREFIX", "DEMO_ENV", "DEMO_MODEL_ENV", "DemoCaps", "DemoSettings", "dashboard_secrets",
           "demo_caps", "demo_mode", "demo_model", "demo_settings", "secret_key"]
