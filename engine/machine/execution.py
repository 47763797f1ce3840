"""How a run executes on its machine: numeric precision, XLA, the distribution strategy, the input cache.

A run's config asks (``training.precision``, ``training.xla``: "auto" or a
fixed choice); the worker resolves that for the hardware it finds and records
the effective choice, with a reason a person can read, in ``execution.json``
in the run's folder and as one event. Runs, Inspect and Compare show it from
there (``load``), so a page never guesses what a worker did.

The choosers here are pure functions of the facts (CPU flags, GPU compute
capabilities): the worker detects the facts (``cpu_flags`` here,
the GPUs through TensorFlow in ``engine.training.precision``), and tests pass
made-up facts (a CPU without bfloat16, two GPUs) without the hardware.
No TensorFlow here: the dashboard imports this module.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import PRECISIONS, XLA_MODES  # noqa: F401  (the vocabulary lives in config)

EXECUTION_FILE = "execution.json"

# CPU flags (as /proc/cpuinfo spells them) that make bfloat16 matrix maths fast: AVX-512 BF16
# (Cooper Lake and later) and AMX (Sapphire Rapids and later). oneDNN uses them for mixed_bfloat16.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# On a CPU, bfloat16 pays only for models big enough that the matrix maths outweighs the casts around
# every layer: `python -m engine bench` on the development CPU measured tutorial3d at 16^3 (19 MFLOP per
# sample forward) slower in mixed_bfloat16 (steady epoch 2.06 s vs 1.15 s in float32) and kerasio3d at
# 48^3 (4.6 GFLOP) faster (docs/performance.md). "auto" takes bfloat16 from this size up (a round
# number between the two measured points).
BF16_MIN_FORWARD_FLOPS = 1e9
# Tensor cores (fast float16 matrix maths) arrived with compute capability 7.0 (Volta).
TENSOR_CORE_CAPABILITY = (7, 0)

# Where XLA (jit_compile) pays, by (device kind, precision), from `python -m engine bench` with
# --xla on and off in the same invocation. Only measured combinations appear here; "auto" leaves
# XLA off for anything not listed as True. Evidence, on the 2-core development CPU (Xeon with AMX,
# shared, load average 12-20; figures in docs/performance.md):
#   cpu: `tools/gpu_check.sh --dry-run` (tutorial3d 8^3, batch 4): steady epoch 2.38 s with XLA vs
#   2.31 s without in float32, 4.02 s vs 3.21 s in mixed_bfloat16; kerasio3d 48^3 batch 8 float32
#   with jit_compile=True had not finished 4 epochs of 64 samples after 13 min (XLA's CPU compile
#   of the 3D convolutions; about 40 s without XLA).
#   gpu: not measured yet (tools/gpu_check.sh measures it); left off until it is.
XLA_FASTER: dict[tuple[str, str], bool] = {
    ("cpu", "float32"): False,
    ("cpu", "mixed_bfloat16"): False,
}


@dataclass(frozen=True)
class Execution:
    """The effective execution of one run, as recorded."""

    precision: str  # a Keras dtype policy name: float32, mixed_bfloat16 or mixed_float16
    precision_reason: str
    xla: bool
    xla_reason: str
    device: str  # "cpu" or "gpu"
    strategy: str = "default"  # "default" (one device) or "mirrored"
    replicas: int = 1
    batch_size: int | None = None  # the global batch (per-replica batch x replicas)
    input_cache: bool | None = None  # volumes held in memory after the first read (None: not decided yet)
    input_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for pages and events: "mixed_bfloat16, XLA off, 1 device, volumes in memory"."""
        parts = [self.precision, f"XLA {'on' if self.xla else 'off'}"]
        parts.append(f"MirroredStrategy over {self.replicas} GPUs" if self.strategy == "mirrored"
                     else f"one {self.device.upper()}")
        if self.input_cache is not None:
            parts.append("volumes cached in memory" if self.input_cache else "volumes read from disk per batch")
        return ", ".join(parts)

    def reasons(self) -> list[str]:
        return [text for text in (self.precision_reason, self.xla_reason, self.input_reason) if text]


# ------------------------------------------------------------------ facts
def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where that file is missing."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


# ---------------------------------------------------------------- choices
def choose_precision(
    requested: str, *, cpu_flags: frozenset[str] | set[str], gpu_capabilities: list[tuple[int, int]],
    forward_flops: float | None = None,
) -> tuple[str, str]:
    """(Keras policy name, reason) for ``requested`` on a machine with these CPU flags and GPUs.

    ``forward_flops`` (per sample) matters on a bfloat16 CPU only: a smaller model than
    ``BF16_MIN_FORWARD_FLOPS`` stays float32. None: not known, taken as big enough.
    """
    if requested != "auto":
        return requested, f"{requested} as configured (training.precision)"
    if gpu_capabilities:
        slowest = min(gpu_capabilities)
        capability = f"{slowest[0]}.{slowest[1]}"
        if slowest >= TENSOR_CORE_CAPABILITY:
            return "mixed_float16", (
                f"auto: the GPU has tensor cores (compute capability {capability} >= 7.0), so mixed_float16 "
                "(float16 maths, float32 weights, output and loss; loss scaling against underflow)"
            )
        return "float32", f"auto: the GPU has no tensor cores (compute capability {capability} < 7.0), so float32"
    found = [flag for flag in BF16_CPU_FLAGS if flag in cpu_flags]
    if found and forward_flops is not None and forward_flops < BF16_MIN_FORWARD_FLOPS:
        return "float32", (
            f"auto: the CPU supports bfloat16 ({', '.join(found)}), but the model is small "
            f"({forward_flops / 1e6:,.0f} MFLOP per sample, below {BF16_MIN_FORWARD_FLOPS / 1e9:g} GFLOP), where "
            "bfloat16's casts cost more than its faster maths saves, so float32"
        )
    if found:
        return "mixed_bfloat16", (
            f"auto: the CPU supports bfloat16 ({', '.join(found)}), so mixed_bfloat16 "
            "(bfloat16 maths, float32 weights, output and loss)"
        )
    return "float32", (
        f"auto: the CPU has no bfloat16 instructions (none of {', '.join(BF16_CPU_FLAGS)}) and there is no GPU, "
        "so float32 (mixed precision would be slower here)"
    )


def choose_xla(requested: str, *, device: str, precision: str) -> tuple[bool, str]:
    """(jit_compile, reason) for ``requested`` on ``device`` ("cpu" or "gpu") at ``precision``."""
    if requested == "on":
        return True, "XLA on as configured (training.xla)"
    if requested == "off":
        return False, "XLA off as configured (training.xla)"
    faster = XLA_FASTER.get((device, precision))
    if faster:
        return True, f"auto: XLA on (measured faster on {device.upper()} with {precision})"
    if faster is None:
        return False, f"auto: XLA off (not yet measured on {device.upper()} with {precision})"
    return False, f"auto: XLA off (measured no faster on {device.upper()} with {precision})"


def choose_strategy(gpu_count: int, batch_size: int) -> tuple[str, int, int, str]:
    """(strategy, replicas, global batch, reason): MirroredStrategy when one run sees several GPUs.

    The configured batch size is per GPU; the global batch is scaled by the number of replicas, so
    each GPU computes the batch the config names (and the step count per epoch shrinks).
    """
    if gpu_count >= 2:
        return "mirrored", gpu_count, batch_size * gpu_count, (
            f"{gpu_count} GPUs visible: MirroredStrategy, global batch {batch_size} x {gpu_count} = "
            f"{batch_size * gpu_count}"
        )
    return "default", 1, batch_size, ""


# --------------------------------------------------------------- the record
def save(run_dir: Path, execution: Execution) -> None:
    """Write ``execution.json`` atomically (a reader never sees half a file)."""
    path = Path(run_dir) / EXECUTION_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(execution.to_dict(), sort_keys=True))
    os.replace(temporary, path)


def load(run_dir: Path) -> Execution | None:
    """The recorded execution of a run; None for a run that has not started (or predates the record)."""
    try:
        raw = json.loads((Path(run_dir) / EXECUTION_FILE).read_text())
    except (OSError, ValueError):
        return None
    names = {field.name for field in dataclasses.fields(Execution)}
    try:
        return Execution(**{key: value for key, value in raw.items() if key in names})
    except TypeError:
        return None


def of_run(run_id: int) -> Execution | None:
    """The recorded execution of run ``run_id`` (None before its worker started); never creates its folder."""
    from engine import paths

    return load(paths.run_dir(run_id, create=False))


def describe_runs(run_ids_and_labels: list[tuple[int, str]]) -> dict[str, dict[str, str]]:
    """{run label: {aspect: text}} for a table with one column per run (Compare)."""
    table = {}
    for run_id, label in run_ids_and_labels:
        chosen = of_run(run_id)
        if chosen is None:
            table[label] = {"precision": "not recorded", "XLA": "", "devices": "", "input": ""}
            continue
        table[label] = {
            "precision": chosen.precision,
            "XLA": "on" if chosen.xla else "off",
            "devices": (f"MirroredStrategy, {chosen.replicas} GPUs, global batch {chosen.batch_size}"
                        if chosen.strategy == "mirrored" else f"one {chosen.device.upper()}"),
            "input": {True: "in memory", False: "from disk per batch", None: ""}[chosen.input_cache],
        }
    return table


__all__ = [
    "BF16_CPU_FLAGS", "BF16_MIN_FORWARD_FLOPS", "EXECUTION_FILE", "Execution", "XLA_FASTER", "choose_precision", "choose_strategy",
    "choose_xla", "cpu_flags", "describe_runs", "load", "of_run", "save",
]
