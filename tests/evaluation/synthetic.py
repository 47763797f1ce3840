"""Runs with synthetic stored predictions (no training), for fast evaluation and page tests."""

from __future__ import annotations

import numpy as np

from engine.config import RunConfig
from engine.runs import RunStatus
from engine.store import RunStore


def synthetic_probabilities(rng: np.random.Generator, labels: np.ndarray, num_classes: int, skill: float) -> np.ndarray:
    """Class probabilities that favour the true class more as ``skill`` grows (0: random)."""
    logits = rng.normal(0.0, 1.0, size=(len(labels), num_classes))
    logits[np.arange(len(labels)), labels] += skill
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def make_run(
    store: RunStore,
    *,
    num_classes: int = 3,
    val_size: int = 60,
    test_size: int = 40,
    epochs: int = 5,
    seed: int = 0,
    dataset_size: int | None = None,
    volume_size: int = 8,
    status: RunStatus = RunStatus.FINISHED,
    class_names: list[str] | None = None,
    positive_class: str | None = None,
) -> int:
    """A run on shapes3d (2 classes) or a renamed 3+-class set with stored val predictions every epoch and test ones.

    The run's dataset config is a real shapes3d config whose sample ids cover
    the stored ones, so the sample viewer can load volumes. ``class_names`` renames the classes;
    ``positive_class`` is recorded as data.positive_class (None: a run from before the field).
    """
    rng = np.random.default_rng(seed)
    total = dataset_size or (val_size + test_size)
    config = RunConfig()
    config.data.dataset = "shapes3d"
    config.data.options = {"num_samples": int(total), "size": int(volume_size), "mode": "location"}
    config.training.epochs = epochs
    config.data.positive_class = positive_class
    run_id = store.create_run(config, status=status)
    if class_names is None:
        class_names = ["left", "right"] if num_classes == 2 else [f"class{i}" for i in range(num_classes)]
    ids = rng.permutation(total)
    val_ids, test_ids = ids[:val_size], ids[val_size : val_size + test_size]
    val_labels = rng.integers(0, num_classes, val_size)
    test_labels = rng.integers(0, num_classes, test_size)
    for epoch in range(1, epochs + 1):
        probabilities = synthetic_probabilities(rng, val_labels, num_classes, skill=0.8 * epoch)
        store.save_predictions(run_id, epoch, "val", val_ids, val_labels, probabilities)
    best = epochs
    if test_size:
        store.save_predictions(
            run_id, best, "test", test_ids, test_labels, synthetic_probabilities(rng, test_labels, num_classes, 3.0)
        )
    store.update_run(
        run_id,
        class_names=class_names,
        num_classes=num_classes,
        split_sizes={"train": 10, "val": val_size, "test": test_size},
        epochs_done=epochs,
        best_epoch=best,
        best_value=0.5,
        test_metrics={"accuracy": 0.9, "epoch": best} if test_size else None,
    )
    return run_id
