"""Runs built sick on purpose (planted histories and predictions on the one fake-run factory, no training) for
page and browser tests."""

from __future__ import annotations

import numpy as np

from engine.doctor.findings import CHECK_KIND, PARAMS_CHECK
from engine.store import RunStore
from tests.fake_runs import predictions_run, synthetic_probabilities


def epoch_rows(loss, val_loss, accuracy=None, val_accuracy=None):
    """Stored-history rows (epoch, loss, val_loss and the accuracies when given) of made-up curves."""
    rows = []
    for index, (train, val) in enumerate(zip(loss, val_loss)):
        row = {"epoch": index + 1, "loss": train, "val_loss": val}
        if accuracy is not None:
            row.update(accuracy=accuracy[index], val_accuracy=val_accuracy[index])
        rows.append(row)
    return rows


def overfitting_run(store: RunStore) -> int:
    """8 epochs: the training loss falls to ~0, the validation loss is lowest at epoch 3 and climbs."""
    run_id = predictions_run(store, num_classes=2, val_size=60, test_size=40, epochs=8, seed=3, curves={
        "loss": [0.69, 0.45, 0.30, 0.16, 0.08, 0.04, 0.02, 0.01],
        "val_loss": [0.70, 0.55, 0.50, 0.56, 0.66, 0.80, 0.95, 1.10],
        "accuracy": [0.55, 0.78, 0.88, 0.95, 0.98, 1.0, 1.0, 1.0],
        "val_accuracy": [0.52, 0.70, 0.75, 0.73, 0.72, 0.70, 0.70, 0.68],
    })
    store.log_metrics(run_id, [{"kind": CHECK_KIND, "epoch": 0, "name": PARAMS_CHECK, "value": 2_300_000}])
    rng = np.random.default_rng(3)
    stored = store.get_predictions(run_id, "val", 1)
    for epoch in range(1, 9):  # validation accuracy about 0.7, as the history says
        probabilities = synthetic_probabilities(rng, stored["labels"], 2, 1.2)
        store.save_predictions(run_id, epoch, "val", stored["sample_ids"], stored["labels"], probabilities)
    store.update_run(run_id, name="memorises <b>*tiny*</b>", best_epoch=3, best_value=0.50, monitor="val_loss")
    return run_id


def collapsed_run(store: RunStore) -> int:
    """5 epochs in which every validation sample is predicted as the majority class."""
    run_id = predictions_run(store, num_classes=2, val_size=50, test_size=20, epochs=5, seed=4, best_epoch=5,
                             curves={"loss": [0.69, 0.68, 0.68, 0.67, 0.67], "val_loss": [0.68, 0.67, 0.67, 0.67, 0.67],
                                     "accuracy": [0.6, 0.6, 0.61, 0.6, 0.61], "val_accuracy": [0.62] * 5})
    rng = np.random.default_rng(4)
    labels = np.array([0] * 31 + [1] * 19)
    for epoch in range(1, 6):
        probabilities = np.tile([[0.7, 0.3]], (50, 1)) + rng.normal(0, 0.02, (50, 1)) * [[1, -1]]
        store.save_predictions(run_id, epoch, "val", np.arange(50), labels, probabilities.astype(np.float32))
    store.save_predictions(run_id, 5, "test", np.arange(50, 70), np.array([0] * 12 + [1] * 8),
                           synthetic_probabilities(rng, np.zeros(20, dtype=int), 2, 6.0))
    store.update_run(run_id, name="one class", class_names=["healthy", "lesion_[T2]"])
    return run_id


def batchnorm_gap_run(store: RunStore) -> int:
    """6 epochs of memorising curves, one-class validation answers and a BatchNorm gap (0.50 with the moving
    statistics, 0.975 with batch statistics): the gap is the root cause, collapse and overfitting follow."""
    from engine.doctor.findings import BN_ACCURACY_BATCH, BN_ACCURACY_INFERENCE

    run_id = predictions_run(store, num_classes=2, val_size=40, test_size=20, epochs=6, seed=5, curves={
        "loss": [0.6, 0.4, 0.25, 0.12, 0.05, 0.02], "val_loss": [0.65, 0.55, 0.5, 0.6, 0.8, 1.0],
        "accuracy": [0.7, 0.85, 0.93, 0.97, 0.99, 1.0], "val_accuracy": [0.5] * 6,
    })
    labels = np.array([0] * 20 + [1] * 20)
    for epoch in range(1, 7):
        store.save_predictions(run_id, epoch, "val", np.arange(40), labels, np.tile([[0.97, 0.03]], (40, 1)))
    store.log_metrics(run_id, [{"kind": CHECK_KIND, "epoch": 6, "name": BN_ACCURACY_INFERENCE, "value": 0.50},
                               {"kind": CHECK_KIND, "epoch": 6, "name": BN_ACCURACY_BATCH, "value": 0.975}])
    store.update_run(run_id, name="bn gap", best_epoch=3)
    return run_id
