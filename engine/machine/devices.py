"""Training slots: how many runs may train at once, and which GPU each one gets.

One slot per visible NVIDIA GPU, found with ``nvidia-smi -L`` (never by
importing TensorFlow: the dashboard must start fast), and one ``"cpu"`` slot
on a machine without GPUs. ``CONV3D_LAB_SLOTS=N`` overrides the count: fewer
slots than GPUs use the first N; more share the GPUs round-robin ("0", "1",
then "0:1", "1:1", ...). A worker on slot S is pinned with
``CUDA_VISIBLE_DEVICES`` = the part of S before the colon.
"""

from __future__ import annotations

import functools
import os
import subprocess

from engine.errors import LabError

SLOTS_ENV = "CONV3D_LAB_SLOTS"
CPU_SLOT = "cpu"
# The slot name of a run trained in the foreground by ``python -m engine train`` (not a queue slot).
FOREGROUND_SLOT = "foreground"
# Seconds nvidia-smi may take before the machine is treated as CPU-only.
_NVIDIA_SMI_TIMEOUT_S = 10


def slots() -> list[str]:
    """The names of this lab's slots, e.g. ["0", "1"] on two GPUs or ["cpu"]."""
    gpus = visible_gpus()
    count = _slot_count_override()
    if count is None:
        count = len(gpus) or 1
    if not gpus:
        return [CPU_SLOT] if count == 1 else [f"{CPU_SLOT}{index}" for index in range(count)]
    names = []
    for index in range(count):
        share, gpu = divmod(index, len(gpus))
        names.append(gpus[gpu] if share == 0 else f"{gpus[gpu]}:{share}")
    return names


def cuda_visible_devices(slot: str) -> str | None:
    """The CUDA_VISIBLE_DEVICES value for a worker on ``slot`` (None for a CPU slot: leave it as is)."""
    if slot.startswith(CPU_SLOT):
        return None
    return slot.split(":", 1)[0]


def visible_gpus() -> list[str]:
    """GPU ids this process may hand out: nvidia-smi's list, narrowed by our own CUDA_VISIBLE_DEVICES."""
    found = _nvidia_smi_gpus()
    if not found:
        return []
    restricted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if restricted is None:
        return list(found)
    entries = [entry.strip() for entry in restricted.split(",") if entry.strip()]
    # CUDA ignores everything from the first invalid (e.g. negative) entry on.
    valid = []
    for entry in entries:
        if entry.startswith("-"):
            break
        valid.append(entry)
    return valid


@functools.lru_cache(maxsize=1)
def _nvidia_smi_gpus() -> tuple[str, ...]:
    """Indices of the GPUs ``nvidia-smi -L`` lists (cached: the answer does not change while we run)."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    if result.returncode != 0:
        return ()
    indices = []
    for line in result.stdout.splitlines():
        # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)"; MIG lines are indented and skipped.
        if line.startswith("GPU "):
            index = line.split()[1].rstrip(":")
            if index.isdigit():
                indices.append(index)
    return tuple(indices)


def _slot_count_override() -> int | None:
    raw = os.environ.get(SLOTS_ENV, "").strip()
    if not raw:
        return None
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise LabError(
            f"{SLOTS_ENV} is {raw!r}; set it to a whole number of at least 1 "
            "(how many runs may train at once) or unset it (one per GPU, one on a CPU-only machine)."
        )
    return count
