"""One arm of ``python -m engine bench train``: a plain Keras script, or the engine, timed epoch by epoch.

Each arm runs in a fresh process (``python -m engine bench-arm SPEC``), so its
peak resident memory and its first-epoch time are its own. Both arms train the
same model (``engine.models``), compiled with the same optimizer, loss and
metrics, on the same split of the same cached dataset, with the same batch size:

- ``plain``: what a user's script does: the split read into NumPy arrays,
  ``model.fit(x, y, validation_data=...)``, float32, no callbacks of its own
  (only the epoch timer below, which has no batch hooks);
- ``engine``: ``execute_run`` on a fresh run in a scratch workspace, with the
  recorder (store rows, per-batch loss, stop flag, validation predictions,
  ``last.keras`` / ``best.keras`` every epoch), the tf.data pipeline and the
  run's precision / XLA choice.

The epoch timer is the last callback, so an engine epoch's time includes the
recorder's end-of-epoch work (predictions, checkpoints, store writes).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from typing import Any

import keras
import numpy as np

from engine import datasets, models
from engine.config import ModelConfig, RunConfig
from engine.training import pipeline, precision, recipe

# Peak dense matrix throughput per GPU model (FLOP/s), from the vendors' data sheets: (float32, 16-bit tensor
# cores without sparsity). Matched by substring of the device name; anything else reports no peak.
GPU_PEAK_FLOPS: dict[str, tuple[float, float]] = {
    "H200": (67e12, 989e12),
    "H100": (67e12, 989e12),
    "A100": (19.5e12, 312e12),
    "L40S": (91.6e12, 362e12),
    "L4": (30.3e12, 121e12),
    "A10": (31.2e12, 125e12),
    "V100": (15.7e12, 125e12),
    "T4": (8.1e12, 65e12),
}


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (epoch hooks only: Keras then skips the per-batch callback calls)."""

    def __init__(self, started_at: float):
        super().__init__()
        self.started_at = started_at
        self.epoch_seconds: list[float] = []
        self.first_epoch_end: float | None = None
        self.val_accuracy: float | None = None
        self._began = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._began)
        if self.first_epoch_end is None:
            self.first_epoch_end = time.time()
        if logs and "val_accuracy" in logs:
            self.val_accuracy = float(logs["val_accuracy"])


forward_flops_per_sample = precision.forward_flops_per_sample


class GpuBusySampler:
    """The share of samples in which nvidia-smi saw the GPU busy, sampled while training (GPU only)."""

    def __init__(self, interval_s: float = 0.25):
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                result = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=5, check=False,
                )
                values = [float(line) for line in result.stdout.split() if line.strip()]
                if values:
                    self.samples.append(max(values) / 100.0)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def share(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def _device() -> dict[str, Any]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"kind": "cpu", "name": _cpu_name()}
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"kind": "gpu", "name": details.get("device_name", "GPU"), "count": len(gpus)}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def _peak_flops(device: dict[str, Any], precision: str) -> float | None:
    if device["kind"] != "gpu":
        return None  # a shared CPU has no meaningful datasheet peak
    for name, (float32_peak, tensor_peak) in GPU_PEAK_FLOPS.items():
        if name in device["name"]:
            return float32_peak if precision == "float32" else tensor_peak
    return None


def run_config(spec: dict[str, Any]) -> RunConfig:
    """The RunConfig both arms train: the spec's dataset, model and batch, the engine's defaults otherwise."""
    return RunConfig.from_dict({
        "name": f"bench {spec['arm']}",
        "data": {"dataset": spec["dataset"], "options": dict(spec["options"]),
                 "normalization": spec.get("normalization", "none")},
        "model": {"architecture": spec["arch"], "padding": spec.get("padding")},
        "training": {
            "epochs": int(spec["epochs"]), "batch_size": int(spec["batch_size"]), "seed": int(spec.get("seed", 0)),
            "precision": spec.get("precision", "float32"), "xla": spec.get("xla", "off"),
            "max_saliency_samples": 0,  # after training, outside the epochs timed; kept out of the arm's total
        },
    })


def _plain(spec: dict[str, Any], timer: EpochTimer) -> dict[str, Any]:
    config = run_config(spec)
    training = config.training
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(training.seed)
    dataset = datasets.load_dataset(config.data.dataset, config.data.options)
    splits = datasets.make_splits(dataset, config.data.val_fraction, config.data.test_fraction, seed=training.seed)

    def arrays(indices):
        x = datasets.normalize(np.asarray(dataset.x[np.sort(indices)], dtype=np.float32), config.data.normalization)
        return x, pipeline.encode_labels(np.asarray(dataset.y[np.sort(indices)]), dataset.num_classes)

    x_train, y_train = arrays(splits.train)
    x_val, y_val = arrays(splits.val)
    model = models.build_model(config.model.architecture, dataset.volume_shape, dataset.num_classes,
                               ModelConfig(architecture=config.model.architecture, padding=config.model.padding))
    model.compile(optimizer=recipe.make_optimizer(training, training.learning_rate),
                  loss=recipe.make_loss(training, dataset.num_classes),
                  metrics=recipe.make_metrics(dataset.num_classes))
    model.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=training.batch_size,
              epochs=training.epochs, callbacks=[timer], verbose=0)
    return {"model": model, "train_samples": len(y_train), "precision": "float32", "xla": False,
            "precision_reason": "the plain script is float32", "input_cache": True, "input_epoch_s": None}


def _engine(spec: dict[str, Any], timer: EpochTimer) -> dict[str, Any]:
    import socket

    from engine import paths, validation
    from engine.machine import execution
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training.run import execute_run

    config = validation.validate(run_config(spec))
    store = open_store()
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    now = time.time()
    store.update_run(run_id, pid=os.getpid(), host=socket.gethostname(), slot="bench", started_at=now,
                     heartbeat_at=now)
    captured: dict[str, Any] = {}

    class KeepModel(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            captured["model"] = self.model

    summary = execute_run(store, run_id, callbacks=[timer, KeepModel()])
    if summary["status"] != RunStatus.FINISHED:
        raise RuntimeError(f"the engine's bench run ended {summary['status']}: {summary['error']}")
    chosen = execution.load(paths.run_dir(run_id))
    input_epoch_s = _input_epoch_seconds(store, run_id, config, chosen)
    return {"model": captured["model"], "train_samples": store.get_run(run_id).split_sizes["train"],
            "precision": chosen.precision, "xla": chosen.xla, "precision_reason": chosen.precision_reason,
            "xla_reason": chosen.xla_reason, "input_cache": chosen.input_cache, "input_reason": chosen.input_reason,
            "input_epoch_s": input_epoch_s}


def _input_epoch_seconds(store, run_id: int, config: RunConfig, chosen) -> float:
    """Seconds the engine's training pipeline alone takes for one epoch (its second pass: the steady state)."""
    from engine import paths
    from engine.training.run import prepare_data

    data = prepare_data(config, paths.run_dir(run_id), store, run_id)
    x_train = pipeline.in_memory(data.x_train) if chosen.input_cache else data.x_train
    train = pipeline.make_dataset(
        x_train, pipeline.encode_labels(data.y_train, data.num_classes), chosen.batch_size or config.training.batch_size,
        training=True, seed=config.training.seed, training_config=config.training,
    )
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        for _batch in train:
            pass
        seconds.append(time.perf_counter() - started)
    return seconds[-1]


def run_arm(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one arm as ``spec`` says and return its figures (JSON-ready)."""
    started_at = float(spec.get("spawned_at") or time.time())
    timer = EpochTimer(started_at)
    device = _device()
    sampler = GpuBusySampler() if device["kind"] == "gpu" else None
    if sampler:
        sampler.__enter__()
    try:
        result = (_plain if spec["arm"] == "plain" else _engine)(spec, timer)
    finally:
        if sampler:
            sampler.__exit__()
    model = result.pop("model")
    epochs = timer.epoch_seconds
    steady = epochs[1:] if len(epochs) > 1 else epochs
    epoch_s = statistics.median(steady)
    samples_per_s = result["train_samples"] / epoch_s
    forward = forward_flops_per_sample(model)
    train_flops = 3 * forward  # forward + backward (about twice the forward)
    peak = _peak_flops(device, result["precision"])
    achieved = train_flops * samples_per_s
    input_epoch_s = result.pop("input_epoch_s")
    return {
        **result,
        "arm": spec["arm"],
        "requested_precision": spec.get("precision", "float32") if spec["arm"] == "engine" else "float32",
        "requested_xla": spec.get("xla", "off") if spec["arm"] == "engine" else "off",
        "device": device,
        "epoch_seconds": [round(value, 4) for value in epochs],
        "steady_epoch_s": round(epoch_s, 4),
        "first_epoch_s": round(timer.first_epoch_end - started_at, 3) if timer.first_epoch_end else None,
        "samples_per_s": round(samples_per_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "val_accuracy": timer.val_accuracy,
        "forward_flops_per_sample": forward,
        "train_flops_per_sample": train_flops,
        "flop_per_s": round(achieved, 1),
        "peak_flop_per_s": peak,
        "peak_share": round(achieved / peak, 4) if peak else None,
        "device_busy_share": sampler.share() if sampler else None,
        "input_epoch_s": round(input_epoch_s, 4) if input_epoch_s is not None else None,
        "input_share": round(input_epoch_s / epoch_s, 4) if input_epoch_s is not None else None,
        "load_average": list(os.getloadavg()),
    }
