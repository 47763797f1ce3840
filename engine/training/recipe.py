"""Optimizer, learning-rate schedule, loss, metrics and class weights from a TrainingConfig."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from sklearn.metrics import precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight

from engine.config import TrainingConfig
from engine.runs import MACRO_PRECISION_METRIC, MACRO_RECALL_METRIC
from engine.training.pipeline import encode_labels

@dataclass
class LearningRatePlan:
    """How the learning rate moves: the optimizer's rate (a float or a per-step Keras schedule)
    and the callbacks that change it between epochs."""

    rate: float | keras.optimizers.schedules.LearningRateSchedule
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)


def learning_rate_plan(config: TrainingConfig, steps_per_epoch: int) -> LearningRatePlan:
    """Every schedule in one place: constant, exponential and cosine (Keras schedules evaluated per
    optimizer step) and plateau (ReduceLROnPlateau on the monitored metric)."""
    if config.schedule == "exponential":
        # Staircase: the rate is multiplied by decay_rate once per epoch.
        return LearningRatePlan(keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=steps_per_epoch, decay_rate=config.decay_rate, staircase=True
        ))
    if config.schedule == "cosine":
        return LearningRatePlan(
            keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
        )
    if config.schedule == "plateau":
        return LearningRatePlan(config.learning_rate, [keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor, mode=monitor_mode(config.monitor), factor=config.plateau_factor,
            patience=config.plateau_patience,
        )])
    return LearningRatePlan(config.learning_rate)


def make_optimizer(config: TrainingConfig, rate) -> keras.optimizers.Optimizer:
    """The configured optimizer at ``rate`` (a ``LearningRatePlan.rate``)."""
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(rate)


def make_loss(config: TrainingConfig, num_classes: int) -> keras.losses.Loss:
    if num_classes == 2:
        if config.loss == "focal":
            return keras.losses.BinaryFocalCrossentropy(gamma=config.focal_gamma)
        return keras.losses.BinaryCrossentropy()
    if config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(gamma=config.focal_gamma)
    return keras.losses.CategoricalCrossentropy()


def make_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    accuracy = (
        keras.metrics.BinaryAccuracy(name="accuracy")
        if num_classes == 2
        else keras.metrics.CategoricalAccuracy(name="accuracy")
    )
    # For several classes AUC is micro-averaged over the one-hot outputs. No Keras Precision / Recall:
    # thresholded at 0.5 on a softmax head they are micro-averages (a 10-class run read val_recall
    # 0.047 at val_accuracy 0.74); macro_precision_recall is recorded from the predictions instead.
    return [accuracy, keras.metrics.AUC(name="auc")]


def evaluate_outputs(model: keras.Model, labels: np.ndarray, outputs: np.ndarray, num_classes: int,
                     metrics: list[keras.metrics.Metric] | None = None) -> dict[str, float]:
    """loss, accuracy and auc of ``outputs`` (``model.predict``'s, for ``labels``) as ``model.evaluate`` reports
    them, without a second pass over the volumes: the model's compiled loss plus its regularization
    (``compute_loss``, as Keras' test step) and ``make_metrics`` (or ``metrics``, reset) over all samples
    at once (the loss is a mean over samples, and accuracy and AUC accumulate counts, so one batch of
    everything gives the same figures as Keras' batches)."""
    y_true = keras.ops.convert_to_tensor(encode_labels(labels, num_classes))
    y_pred = keras.ops.convert_to_tensor(np.asarray(outputs, dtype=np.float32))
    values = {"loss": float(keras.ops.convert_to_numpy(model.compute_loss(y=y_true, y_pred=y_pred, training=False)))}
    for metric in make_metrics(num_classes) if metrics is None else metrics:
        metric.reset_state()
        metric.update_state(y_true, y_pred)
        values[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
    return values


def macro_precision_recall(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Macro-averaged precision and recall of the argmax predictions over the classes present in ``labels``
    (any head: a sigmoid head's probabilities come as two columns); {} for an empty split."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return {}
    predicted = np.argmax(np.asarray(probabilities), axis=1)
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predicted, labels=np.unique(labels), average="macro", zero_division=0
    )
    return {MACRO_PRECISION_METRIC: float(precision), MACRO_RECALL_METRIC: float(recall)}


def class_weights(config: TrainingConfig, train_labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """Balanced weights n / (C * n_c) from scikit-learn, or None."""
    if config.class_weight != "balanced":
        return None
    classes = np.arange(num_classes)
    present = np.unique(train_labels)
    weights = compute_class_weight("balanced", classes=present, y=train_labels)
    by_class = {int(c): 1.0 for c in classes}
    by_class.update({int(c): float(w) for c, w in zip(present, weights)})
    return by_class


def monitor_mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"
