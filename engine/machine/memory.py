"""How much memory a run may train in, and a bound on what a model needs that is known before building it.

Plain Python (nvidia-smi and ``os.sysconf``, never TensorFlow), so the model
registry can refuse an absurd input shape before any Keras code runs, and the
dashboard can use it on every script run.

``CONV3D_LAB_DEVICE_MEMORY_MB`` overrides the detected size (a GPU shared with
other work, or tests).
"""

from __future__ import annotations

import functools
import math
import os
import subprocess

from engine.errors import LabError

MEMORY_ENV = "CONV3D_LAB_DEVICE_MEMORY_MB"
BYTES_PER_FLOAT = 4
_NVIDIA_SMI_TIMEOUT_S = 10


def device_memory() -> tuple[str, int | None]:
    """(device description, bytes) of the memory a run will train in: the first GPU's, else the RAM.

    Read with nvidia-smi (no TensorFlow); bytes is None when unknown.
    """
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            mebibytes = float(raw)
        except ValueError:
            mebibytes = 0.0
        if not (math.isfinite(mebibytes) and mebibytes > 0):
            raise LabError(f"{MEMORY_ENV} is {raw!r}; set it to the device memory in MiB (e.g. 16384) or unset it.")
        return f"the device ({MEMORY_ENV})", int(mebibytes * 1024 * 1024)
    return _detected_memory()


@functools.lru_cache(maxsize=1)
def _detected_memory() -> tuple[str, int | None]:
    # Cached: the dashboard validates a form on every script run, and the answer does not change.
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT_S, check=True,
        ).stdout.strip().splitlines()
        if output:
            name, mebibytes = output[0].rsplit(",", 1)
            return f"GPU {name.strip()}", int(float(mebibytes)) * 1024 * 1024
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    try:
        return "CPU (system memory)", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "CPU", None


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as ui.tables.format_bytes shows them)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


__all__ = ["BYTES_PER_FLOAT", "MEMORY_ENV", "device_memory", "format_bytes"]
