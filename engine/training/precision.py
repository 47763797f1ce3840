"""Resolve and apply a run's execution: dtype policy, XLA and the distribution strategy.

``engine.machine.execution`` holds the pure choices and the record; this module finds
the facts through TensorFlow (which GPUs this process sees, their compute
capability), sets Keras' global dtype policy before the model is built, and
makes the ``tf.distribute`` strategy the model is built and trained under.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from engine.machine import execution as execution_record
from engine.config import TrainingConfig
from engine.machine.execution import Execution


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capability of each GPU TensorFlow sees in this process (pinned by CUDA_VISIBLE_DEVICES)."""
    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


def mirrored_devices() -> list[str]:
    """The devices a MirroredStrategy spans: every logical GPU (tests substitute a CPU)."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def forward_flops_per_sample(model: keras.Model) -> int:
    """2 x the multiply-adds of the Conv3D and Dense layers for one sample (pooling, BN, activations left out)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            output_voxels = int(np.prod(layer.output.shape[1:-1]))
            total += 2 * output_voxels * int(np.prod(layer.kernel.shape))  # kernel: (kd, kh, kw, in, out)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


def resolve(training: TrainingConfig, model_flops: Callable[[], float] | None = None) -> Execution:
    """The effective precision, XLA and strategy for ``training`` on this machine (the input cache comes later).

    ``model_flops`` gives the model's forward FLOPs per sample; it is called only where the choice
    depends on them ("auto" on a CPU with bfloat16).
    """
    gpus = gpu_capabilities()
    device = "gpu" if gpus else "cpu"
    flags = execution_record.cpu_flags()
    needs_size = (training.precision == "auto" and not gpus and model_flops is not None
                  and any(flag in flags for flag in execution_record.BF16_CPU_FLAGS))
    precision, precision_reason = execution_record.choose_precision(
        training.precision, cpu_flags=flags, gpu_capabilities=gpus,
        forward_flops=model_flops() if needs_size else None,
    )
    xla, xla_reason = execution_record.choose_xla(training.xla, device=device, precision=precision)
    strategy, replicas, batch_size, strategy_reason = execution_record.choose_strategy(len(gpus), training.batch_size)
    if strategy_reason:
        precision_reason = f"{precision_reason}; {strategy_reason}"
    return Execution(
        precision=precision, precision_reason=precision_reason, xla=xla, xla_reason=xla_reason, device=device,
        strategy=strategy, replicas=replicas, batch_size=batch_size,
    )


@contextlib.contextmanager
def applied(execution: Execution) -> Iterator[tf.distribute.Strategy]:
    """Set the dtype policy (restored afterwards) and yield the strategy to build and train under.

    The policy must be set before the model is built: each layer takes its dtype policy when it is
    created. The output layer is float32 whatever the policy (engine.models.common.predictions),
    so the probabilities and the loss are computed in float32; under mixed_float16 Keras' compile
    wraps the optimizer in a LossScaleOptimizer (auto_scale_loss).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(execution.precision)
    try:
        yield make_strategy(execution)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_strategy(execution: Execution) -> tf.distribute.Strategy:
    if execution.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=mirrored_devices())
    return tf.distribute.get_strategy()  # the default strategy: one device, no-op scope
