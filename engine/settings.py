"""Settings of a lab deployment, read from the environment at call time.

``CONV3D_LAB_DEMO=1`` (also ``true``/``yes``/``on``) marks a hosted demo open to
anyone: pages then show a failed run's error sentence but never its traceback or
worker log, which hold server file paths and library versions. A later version
reads the same setting from ``.streamlit/secrets.toml``; the environment stays
the way tests and containers set it.
"""

from __future__ import annotations

import os

DEMO_ENV = "CONV3D_LAB_DEMO"
_TRUE = {"1", "true", "yes", "on"}


def demo_mode() -> bool:
    """Whether this lab is a hosted demo (``$CONV3D_LAB_DEMO`` is 1, true, yes or on)."""
    return os.environ.get(DEMO_ENV, "").strip().lower() in _TRUE


__all__ = ["DEMO_ENV", "demo_mode"]
