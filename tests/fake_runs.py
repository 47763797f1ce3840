"""Made-up runs in a real store, without training: the tests' run factory, and the fill of the Compare
page benchmark (tools/bench_compare_page.py).

``add_synthetic_run`` writes one finished run as the worker would leave it (per-epoch metrics with
wall times, validation predictions at its best and last epochs, test predictions and test metrics of
its best epoch, a parameter count); ``synthetic_config`` varies the configs plausibly.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from engine.config import DataConfig, ModelConfig, RunConfig, TrainingConfig
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, SAMPLES_PER_S_METRIC, RunStatus
from engine.store import RunStore

TEST_SAMPLES = 60


def synthetic_config(index: int, epochs: int, name: str = "") -> RunConfig:
    """A varied but plausible config: four learning rates, two dropouts, two batch sizes, three seeds."""
    return RunConfig(
        name=name or f"synthetic-{index}",
        data=DataConfig(dataset="phantom_lesions", options={"num_samples": 400}),
        model=ModelConfig(architecture=("compact3d", "kerasio3d")[index % 2], dropout_rate=(0.2, 0.5)[index // 2 % 2]),
        training=TrainingConfig(epochs=epochs, learning_rate=(1e-4, 3e-4, 1e-3, 3e-3)[index // 4 % 4],
                                batch_size=(16, 32)[index // 16 % 2], seed=index % 3, monitor="val_accuracy"),
    )


def add_synthetic_run(store: RunStore, config: RunConfig, *, seed: int = 0, epochs: int | None = None,
                      status: RunStatus = RunStatus.FINISHED, num_params: int = 123_456,
                      started_at: float | None = None) -> int:
    """A run with ``epochs`` epochs of made-up but plausible metrics, predictions and results (binary)."""
    rng = np.random.default_rng(seed)
    epochs = int(epochs or config.training.epochs)
    run_id = store.create_run(config)
    started = time.time() - 3600 if started_at is None else started_at
    ceiling, speed = 0.7 + 0.25 * rng.random(), 3 + 20 * rng.random()
    rows: list[dict[str, Any]] = []
    wall = started + 5.0
    for epoch in range(1, epochs + 1):
        progress = 1 - math.exp(-epoch / speed)
        accuracy = 0.5 + (ceiling - 0.5) * progress + rng.normal(0, 0.01)
        val_accuracy = accuracy - 0.05 * progress + rng.normal(0, 0.02)
        seconds = 2.0 + rng.random()
        wall += seconds
        values = {
            "loss": 0.7 * (1 - progress) + 0.1 + rng.normal(0, 0.01),
            "accuracy": accuracy,
            "auc": min(1.0, accuracy + 0.05),
            "val_loss": 0.7 * (1 - progress) + 0.2 + rng.normal(0, 0.02),
            "val_accuracy": val_accuracy,
            "val_auc": min(1.0, val_accuracy + 0.05),
            CURRENT_LR_METRIC: config.training.learning_rate,
            EPOCH_TIME_METRIC: seconds,
            SAMPLES_PER_S_METRIC: 280 / seconds,
        }
        rows.extend({"kind": "epoch", "epoch": epoch, "name": name, "value": float(value), "wall_time": wall}
                    for name, value in values.items())
    store.log_metrics(run_id, rows)
    history = {epoch: {row["name"]: row["value"] for row in rows if row["epoch"] == epoch}
               for epoch in range(1, epochs + 1)}
    monitor = config.training.monitor
    monitored = np.array([history[epoch][monitor] for epoch in range(1, epochs + 1)])
    best = 1 + int(np.argmin(monitored) if "loss" in monitor else np.argmax(monitored))  # the first best, as Keras
    labels = np.arange(TEST_SAMPLES) % 2
    for split, epoch, quality in (("val", best, history[best]["val_accuracy"]),
                                  ("val", epochs, history[epochs]["val_accuracy"]),
                                  ("test", best, history[best]["val_accuracy"])):
        correct = rng.random(TEST_SAMPLES) < quality
        positive = np.where(correct, labels, 1 - labels).astype(float) * 0.6 + 0.2 + rng.normal(0, 0.05, TEST_SAMPLES)
        positive = np.clip(positive, 0.01, 0.99)
        store.save_predictions(run_id, epoch, split, np.arange(TEST_SAMPLES), labels,
                               np.stack([1 - positive, positive], axis=1))
    test_accuracy = float(np.mean((store.get_predictions(run_id, "test")["probabilities"][:, 1] >= 0.5) == labels))
    store.transition(
        run_id, status, from_statuses=[RunStatus.QUEUED],
        epochs_done=epochs, started_at=started, finished_at=wall + 1.0, num_classes=2,
        class_names=["healthy", "lesion"], split_sizes={"train": 280, "val": TEST_SAMPLES, "test": TEST_SAMPLES},
        best_epoch=best, best_value=history[best][monitor], num_params=num_params,
        test_metrics={"accuracy": test_accuracy, "auc": min(1.0, test_accuracy + 0.04), "loss": 0.4, "epoch": best},
    )
    return run_id


def fill_store(store: RunStore, runs: int, epochs: int) -> list[int]:
    return [add_synthetic_run(store, synthetic_config(index, epochs), seed=index, epochs=epochs)
            for index in range(runs)]
