"""The tests' one run factory: made-up runs in a real store, without training (also the fill of the Compare page
benchmark, tools/bench_compare_page.py).

``fake_run(store, status, ...)`` writes one run as the worker would have left it. Its knobs:

- ``status``: any RunStatus. A RUNNING run holds the CPU slot on "another-host" with a fresh heartbeat, so
  ``jobs.reconcile`` leaves it alone and a run the test queues stays queued (no worker starts). A run that
  started has ``started_at``; an ended one ``finished_at`` (now).
- ``config``: the run's config (default ``tiny_config()``); ``name`` renames it.
- ``curves``: the per-epoch metrics of its ``epochs_done`` epochs: "simple" (loss 1/epoch, val_loss 1.2/epoch,
  accuracy 1 - 0.5/epoch, val_accuracy 1 - 0.6/epoch: round values the dashboard tests read), "plausible"
  (seeded noisy learning curves with learning rate, epoch time and throughput: Compare), ``{metric: [value per
  epoch]}`` (a planted history; ``epochs_done`` defaults to its length) or None (no metrics). ``batches`` adds
  that many batch-loss rows per epoch. The best epoch is the first best of the config's monitor, as Keras picks it.
- ``predictions``: None, or ``Predictions(num_classes, val, test, every_epoch)``: stored validation predictions
  (every epoch, or at the best and last epochs only) and test ones of the best epoch, their test metrics, class
  names and split sizes. Sample ids are drawn from the config's ``num_samples``, so on a shapes3d config
  (``shapes3d_config``) the sample viewer loads their volumes.
- ``group``: the run's group (a sweep or cross-validation); ``seed``: the made-up values' random seed.
- ``**fields``: run columns set with the status, over the made-up ones (error, owner, class_names,
  best_epoch, test_metrics, num_params, ...).

Presets: ``predictions_run`` (a shapes3d run with predictions every epoch: evaluation, Inspect, Doctor) and
``compare_run`` (a plausible finished binary run: Compare).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.config import DataConfig, ModelConfig, RunConfig, TrainingConfig
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, SAMPLES_PER_S_METRIC, RunStatus
from engine.store import RunStore

SIMPLE_EPOCH_S = 10.0  # wall seconds per epoch of the "simple" and planted curves


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Stored predictions of a fake run: ``val`` validation samples, ``test`` test samples (0: none)."""

    num_classes: int = 2
    val: int = 60
    test: int = 40
    every_epoch: bool = True  # False: validation predictions at the best and the last epoch only


def tiny_config(name: str = "", epochs: int = 5, **training: Any) -> RunConfig:
    """shapes3d, 16 samples of 8^3: the default config of a fake run."""
    return RunConfig(
        name=name,
        data=DataConfig(dataset="shapes3d", options={"num_samples": 16, "size": 8}),
        training=TrainingConfig(epochs=epochs, **training),
    )


def shapes3d_config(num_samples: int, epochs: int, size: int = 8, positive_class: str | None = None) -> RunConfig:
    """A real two-class shapes3d config (object left or right) with ``num_samples`` samples of ``size``^3."""
    config = RunConfig()
    config.data.dataset = "shapes3d"
    config.data.options = {"num_samples": int(num_samples), "size": int(size), "mode": "location"}
    config.data.positive_class = positive_class
    config.training.epochs = epochs
    return config


def synthetic_config(index: int, epochs: int, name: str = "") -> RunConfig:
    """A varied but plausible config: four learning rates, two dropouts, two batch sizes, three seeds."""
    return RunConfig(
        name=name or f"synthetic-{index}",
        data=DataConfig(dataset="phantom_lesions", options={"num_samples": 400}),
        model=ModelConfig(architecture=("compact3d", "kerasio3d")[index % 2], dropout_rate=(0.2, 0.5)[index // 2 % 2]),
        training=TrainingConfig(epochs=epochs, learning_rate=(1e-4, 3e-4, 1e-3, 3e-3)[index // 4 % 4],
                                batch_size=(16, 32)[index // 16 % 2], seed=index % 3, monitor="val_accuracy"),
    )


def synthetic_probabilities(rng: np.random.Generator, labels: np.ndarray, num_classes: int, skill: float) -> np.ndarray:
    """Class probabilities that favour the true class more as ``skill`` grows (0: random)."""
    logits = rng.normal(0.0, 1.0, size=(len(labels), num_classes))
    logits[np.arange(len(labels)), labels] += skill
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def _simple_curves(epochs: int) -> list[tuple[dict[str, float], float]]:
    return [({"loss": 1.0 / epoch, "val_loss": 1.2 / epoch, "accuracy": 1 - 0.5 / epoch,
              "val_accuracy": 1 - 0.6 / epoch}, SIMPLE_EPOCH_S) for epoch in range(1, epochs + 1)]


def _plausible_curves(rng: np.random.Generator, config: RunConfig, epochs: int) -> list[tuple[dict[str, float], float]]:
    ceiling, speed = 0.7 + 0.25 * rng.random(), 3 + 20 * rng.random()
    curves = []
    for epoch in range(1, epochs + 1):
        progress = 1 - math.exp(-epoch / speed)
        accuracy = 0.5 + (ceiling - 0.5) * progress + rng.normal(0, 0.01)
        val_accuracy = accuracy - 0.05 * progress + rng.normal(0, 0.02)
        seconds = 2.0 + rng.random()
        curves.append(({
            "loss": 0.7 * (1 - progress) + 0.1 + rng.normal(0, 0.01),
            "accuracy": accuracy,
            "auc": min(1.0, accuracy + 0.05),
            "val_loss": 0.7 * (1 - progress) + 0.2 + rng.normal(0, 0.02),
            "val_accuracy": val_accuracy,
            "val_auc": min(1.0, val_accuracy + 0.05),
            CURRENT_LR_METRIC: config.training.learning_rate,
            EPOCH_TIME_METRIC: seconds,
            SAMPLES_PER_S_METRIC: 280 / seconds,
        }, seconds))
    return curves


def _curves(curves: str | Mapping[str, Sequence[float]] | None, rng: np.random.Generator, config: RunConfig,
            epochs: int) -> list[tuple[dict[str, float], float]]:
    """(metric values, wall seconds) of each epoch."""
    if curves is None:
        return []
    if curves == "simple":
        return _simple_curves(epochs)
    if curves == "plausible":
        return _plausible_curves(rng, config, epochs)
    if isinstance(curves, Mapping):
        return [({name: float(values[epoch]) for name, values in curves.items() if epoch < len(values)}, SIMPLE_EPOCH_S)
                for epoch in range(epochs)]
    raise ValueError(f"curves must be 'simple', 'plausible', a mapping or None, not {curves!r}")


def _save_predictions(store: RunStore, run_id: int, rng: np.random.Generator, config: RunConfig,
                      predictions: Predictions, epochs: int, best: int) -> dict[str, Any]:
    """Store the predictions; the run fields they imply (classes, split sizes, test metrics)."""
    num_classes, val_size, test_size = predictions.num_classes, predictions.val, predictions.test
    total = int(config.data.options.get("num_samples", val_size + test_size))
    ids = rng.permutation(total)
    val_ids, test_ids = ids[:val_size], ids[val_size:val_size + test_size]
    val_labels = rng.integers(0, num_classes, val_size)
    test_labels = rng.integers(0, num_classes, test_size)
    val_epochs = range(1, epochs + 1) if predictions.every_epoch else sorted({best, epochs})
    for epoch in val_epochs:
        probabilities = synthetic_probabilities(rng, val_labels, num_classes, skill=0.8 * epoch)
        store.save_predictions(run_id, epoch, "val", val_ids, val_labels, probabilities)
    fields: dict[str, Any] = {
        "num_classes": num_classes,
        "class_names": ["left", "right"] if num_classes == 2 else [f"class{i}" for i in range(num_classes)],
        "split_sizes": {"train": 10, "val": val_size, "test": test_size},
    }
    if test_size:
        probabilities = synthetic_probabilities(rng, test_labels, num_classes, 3.0)
        store.save_predictions(run_id, best, "test", test_ids, test_labels, probabilities)
        metrics = {"accuracy": float(np.mean(probabilities.argmax(axis=1) == test_labels)),
                   "loss": float(-np.mean(np.log(probabilities[np.arange(test_size), test_labels]))),
                   "epoch": best}
        if num_classes == 2 and len(set(test_labels.tolist())) == 2:
            from sklearn.metrics import roc_auc_score  # only here: most callers never pay its import

            metrics["auc"] = float(roc_auc_score(test_labels, probabilities[:, 1]))
        fields["test_metrics"] = metrics
    return fields


def fake_run(store: RunStore, status: RunStatus | str = RunStatus.FINISHED, *, config: RunConfig | None = None,
             name: str = "", epochs_done: int | None = None,
             curves: str | Mapping[str, Sequence[float]] | None = "simple", batches: int = 0,
             predictions: Predictions | None = None, seed: int = 0, group: str | None = None, **fields: Any) -> int:
    """One made-up run in ``status`` (see the module docstring for the knobs); its id."""
    status = RunStatus(status)
    config = config or tiny_config()
    if name:
        config = dataclasses.replace(config, name=name)
    if epochs_done is None:
        epochs_done = len(next(iter(curves.values()), [])) if isinstance(curves, Mapping) else 0
    rng = np.random.default_rng(seed)
    run_id = store.create_run(config, group=group)
    history = _curves(curves, rng, config, epochs_done)
    now = time.time()
    started = now - 5.0 - sum(seconds for _, seconds in history)
    rows: list[dict[str, Any]] = []
    wall = started + 5.0
    for epoch, (values, seconds) in enumerate(history, start=1):
        wall += seconds
        rows.extend({"kind": "epoch", "epoch": epoch, "name": metric, "value": float(value), "wall_time": wall}
                    for metric, value in values.items())
        rows.extend({"kind": "batch", "epoch": epoch, "step": step, "name": "loss", "value": 1.0 / (epoch + step)}
                    for step in range(batches))
    store.log_metrics(run_id, rows)

    update: dict[str, Any] = {"epochs_done": epochs_done}
    monitor = config.training.monitor
    monitored = [values[monitor] for values, _ in history if monitor in values]
    best = epochs_done
    if monitored and len(monitored) == len(history):
        best = 1 + int(np.argmin(monitored) if "loss" in monitor else np.argmax(monitored))  # the first best
        update["best_value"] = monitored[best - 1]
    best = int(fields.get("best_epoch") or best)  # where the test predictions go
    if epochs_done:
        update["best_epoch"] = best
    if predictions is not None:
        update.update(_save_predictions(store, run_id, rng, config, predictions, epochs_done, best))
    if status != RunStatus.QUEUED:
        update["started_at"] = started
    if status == RunStatus.RUNNING:
        # Another host with a fresh heartbeat: reconcile cannot check a pid and leaves it running.
        update.update(slot="cpu", host="another-host", heartbeat_at=now)
    if status.is_ended:
        update["finished_at"] = now
    update.update(fields)
    store.transition(run_id, status, from_statuses=[RunStatus.QUEUED], **update)
    return run_id


def predictions_run(store: RunStore, *, num_classes: int = 3, val_size: int = 60, test_size: int = 40,
                    epochs: int = 5, seed: int = 0, dataset_size: int | None = None, volume_size: int = 8,
                    status: RunStatus | str = RunStatus.FINISHED, curves: Mapping[str, Sequence[float]] | None = None,
                    **fields: Any) -> int:
    """A run on shapes3d (2 classes) or a renamed 3+-class set with stored val predictions every epoch and test ones.

    Its dataset config is a real shapes3d config whose sample ids cover the stored ones (``dataset_size``,
    default val + test), so the sample viewer can load volumes; ``positive_class=`` is recorded as
    data.positive_class (None: a run from before the field), any other field (class_names, ...) on the run.
    """
    config = shapes3d_config(dataset_size or (val_size + test_size), epochs, volume_size,
                             fields.pop("positive_class", None))
    return fake_run(store, status, config=config, epochs_done=epochs, curves=curves, seed=seed,
                    predictions=Predictions(num_classes, val_size, test_size), **fields)


def compare_run(store: RunStore, config: RunConfig, *, seed: int = 0, epochs: int | None = None,
                **fields: Any) -> int:
    """A finished binary run with plausible curves, predictions at its best and last epochs, and a parameter count."""
    fields.setdefault("num_params", 123_456)
    fields.setdefault("class_names", ["healthy", "lesion"])
    fields.setdefault("split_sizes", {"train": 280, "val": 60, "test": 60})
    return fake_run(store, config=config, epochs_done=int(epochs or config.training.epochs), curves="plausible",
                    seed=seed, predictions=Predictions(2, 60, 60, every_epoch=False), **fields)


def fill_store(store: RunStore, runs: int, epochs: int) -> list[int]:
    return [compare_run(store, synthetic_config(index, epochs), seed=index, epochs=epochs) for index in range(runs)]
