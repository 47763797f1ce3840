"""Will a run fit the device? The memory check of ``jobs.launch`` (``--force`` skips it).

The estimate is the one the Train page shows: ``engine.models.describe``'s
``estimated_training_bytes`` (weights, gradients and Adam's slots, plus two
copies of one batch's activations), obtained through ``engine.probe`` (a
subprocess, cached on disk, so the page's preview and the launch share it).
A run is refused when that estimate exceeds FIT_FRACTION of
``engine.machine.memory.device_memory()`` (the GPU's memory, or the RAM on a CPU-only
machine), or when the model cannot even be built to describe it.

Why the probe is sometimes skipped: it costs a TensorFlow start-up (seconds)
the first time a model and input are seen. The analytic lower bound (the
first convolution's activations for the batch, ``registry.first_layer_bytes``,
which ``check_input`` has already compared with the memory) says little on its
own: across the presets on 16^3 to 48^3 inputs, widths 0.25 to 2, batches 1
to 32 and two classes, describe's estimate was up to 1370 times the bound
(vgg3d at batch 1, whose weights dwarf its activations), and the ratio grows
with the width (weights ~ width^2, the bound ~ width). So a run is admitted
without the probe only when ESTIMATE_PER_BOUND x max(1, width) x the bound,
times SKIP_MARGIN (2: the grid above is measured, larger inputs and widths
are extrapolated), still fits, and it has at most SKIP_MAX_CLASSES classes
(the output layer grows with them). That admits the small runs of tests and
the Home page's demo (digits3d 16^3, tutorial3d, batch 32: an 11 MiB bound,
15 GiB after the factors) at once on a 23 GiB CPU machine or an 80 GiB GPU;
anything larger is probed once (about 5 s of CPU, 9-15 s wall on the shared
2-core test machine) and then read from the cache (0.002 s).
tests/jobs/test_admission.py checks the ratio on a small grid.
"""

from __future__ import annotations

import dataclasses

from engine import datasets, probe
from engine.machine import memory
from engine.config import RunConfig
from engine.errors import ConfigError, LabError, Problem
from engine.models import registry

# A run may use at most this share of the device memory (the rest: TensorFlow's own buffers, data).
FIT_FRACTION = 0.9
# describe's estimate <= ESTIMATE_PER_BOUND x max(1, width) x first_layer_bytes (measured, see above).
ESTIMATE_PER_BOUND = 700
SKIP_MARGIN = 2
SKIP_MAX_CLASSES = 10


def surely_fits(bound: int, width: float, num_classes: int, memory_bytes: int) -> bool:
    """Whether the analytic bound alone shows the run fits (so the probe can be skipped)."""
    if num_classes > SKIP_MAX_CLASSES:
        return False
    return bound * ESTIMATE_PER_BOUND * max(1.0, float(width)) * SKIP_MARGIN <= FIT_FRACTION * memory_bytes


def check_fits(config: RunConfig) -> dict | None:
    """Raise ``ConfigError`` when ``config``'s model and batch cannot fit the device memory by the estimate;
    returns the description used (None when the probe was skipped or the memory is unknown)."""
    device, memory_bytes = memory.device_memory()
    if not memory_bytes:
        return None
    info = datasets.dataset_info(config.data.dataset, config.data.options)
    shape, classes = tuple(info["volume_shape"]), int(info["num_classes"])
    batch = int(config.training.batch_size)
    bound = registry.first_layer_bytes(config.model.architecture, shape, config.model, batch)
    if surely_fits(bound, config.model.width_multiplier, classes, memory_bytes):
        return None
    force = "or launch with --force to try anyway"
    try:
        description = probe.describe_model(dataclasses.asdict(config.model), shape, classes, batch)
    except ConfigError:
        raise
    except LabError as e:
        raise ConfigError([Problem("model.architecture", f"{str(e).rstrip('.')}; {force}.")]) from e
    needed = int(description["estimated_training_bytes"])
    if needed > FIT_FRACTION * memory_bytes:
        raise ConfigError([Problem(
            "training.batch_size",
            f"This run needs about {memory.format_bytes(needed)} to train (model and a batch of {batch} "
            f"{'x'.join(map(str, shape[:3]))} volumes), more than {device}'s {memory.format_bytes(memory_bytes)} "
            f"can give; lower the batch size or the width multiplier, resample the volumes smaller, {force}.",
        )])
    return description


__all__ = ["ESTIMATE_PER_BOUND", "FIT_FRACTION", "check_fits", "surely_fits"]
