"""Checks the worker runs on the trained model for the doctor, recorded as ``check`` metric rows.

The BatchNorm check evaluates the validation set twice: with BatchNorm in
inference mode (the moving statistics, as ``predict`` and the validation
metrics use them) and in training mode (each batch's own statistics). A model
whose moving statistics lag behind its weights -- few steps per epoch with
momentum 0.99, the trap the built-in phantom run fell into -- scores far
better the second way. Dropout is switched off for the second pass and the
moving statistics are restored afterwards, so only BatchNorm differs and the
model is left as it was.
"""

from __future__ import annotations

import keras
import numpy as np

from engine.doctor import findings as names
from engine.training.pipeline import probabilities_from_outputs


def has_batchnorm(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def _scores(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of (N, C) probabilities."""
    labels = np.asarray(labels, dtype=np.int64)
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(np.mean(probabilities.argmax(axis=1) == labels)), float(-np.mean(np.log(picked)))


def batchnorm_gap(model: keras.Model, x: np.ndarray, labels: np.ndarray, num_classes: int,
                  batch_size: int) -> dict[str, float]:
    """{check name: value} of the validation accuracy and loss in both BatchNorm modes.

    ``x`` is read a batch at a time (a split's ``VolumeRows`` reads from disk on indexing).
    """
    batches = [np.asarray(x[np.arange(start, min(start + batch_size, len(x)))], dtype=np.float32)
               for start in range(0, len(x), batch_size)]
    inference = probabilities_from_outputs(
        np.concatenate([model.predict_on_batch(batch) for batch in batches]), num_classes
    )
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    saved = [variable.numpy() for variable in model.non_trainable_variables]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        outputs = [keras.ops.convert_to_numpy(model(batch, training=True)) for batch in batches]
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)
    batch_stats = probabilities_from_outputs(np.concatenate(outputs), num_classes)
    accuracy_inference, loss_inference = _scores(inference, labels)
    accuracy_batch, loss_batch = _scores(batch_stats, labels)
    return {
        names.BN_ACCURACY_INFERENCE: accuracy_inference, names.BN_ACCURACY_BATCH: accuracy_batch,
        names.BN_LOSS_INFERENCE: loss_inference, names.BN_LOSS_BATCH: loss_batch,
    }


def record(store, run_id: int, epoch: int, values: dict[str, float]) -> None:
    """Write check rows, skipping names this epoch already has (a resumed run may repeat a check)."""
    from engine.doctor.findings import CHECK_KIND

    present = {(row["epoch"], row["name"]) for row in store.get_metrics(run_id, kind=CHECK_KIND)}
    rows = [{"kind": CHECK_KIND, "epoch": int(epoch), "name": name, "value": float(value)}
            for name, value in values.items() if (int(epoch), name) not in present]
    if rows:
        store.log_metrics(run_id, rows)
