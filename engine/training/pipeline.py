"""tf.data input pipelines: cache, shuffle, batch, prefetch; augmentation on training data only.

Labels are encoded for the model's head: one sigmoid unit for two classes
(float (N, 1)), one-hot (N, C) for softmax. Augmentation uses stateless random
ops seeded from the run seed, so a run is reproducible with augmentation on.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from engine.config import TrainingConfig


def encode_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes == 2:
        return labels.astype(np.float32).reshape(-1, 1)
    return np.eye(num_classes, dtype=np.float32)[labels]


def probabilities_from_outputs(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """Model outputs as (N, C) class probabilities (a sigmoid head gives P(class 1))."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if num_classes == 2:
        positive = outputs.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    return outputs


def _augment(volume: tf.Tensor, seed: tf.Tensor, operations: tuple[str, ...]) -> tf.Tensor:
    """Random flips, in-plane 90° rotations, small shifts and intensity jitter of one (D, H, W, C) volume."""
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    if "flip" in operations:
        for axis in range(3):
            flip = tf.random.stateless_uniform([], seeds[axis]) < 0.5
            volume = tf.cond(flip, lambda v=volume, a=axis: tf.reverse(v, axis=[a]), lambda v=volume: v)
    if "rotate90" in operations:
        # Rotate in the H-W plane (axial slices); needs H == W to keep the shape.
        if volume.shape[1] == volume.shape[2]:
            turns = tf.random.stateless_uniform([], seeds[3], minval=0, maxval=4, dtype=tf.int32)
            transposed = tf.transpose(volume, [1, 2, 0, 3])  # (H, W, D, C): rot90 acts on the first two axes
            rotated = tf.image.rot90(transposed, k=turns)
            volume = tf.transpose(rotated, [2, 0, 1, 3])
    if "shift" in operations:
        # Shift by up to 1/8 of each spatial edge, wrapping around (roll).
        shape = tf.shape(volume)
        limits = tf.maximum(shape[:3] // 8, 1)
        shifts = tf.random.stateless_uniform([3], seeds[4], minval=-1.0, maxval=1.0)
        shifts = tf.cast(tf.round(shifts * tf.cast(limits, tf.float32)), tf.int32)
        volume = tf.roll(volume, shift=shifts, axis=[0, 1, 2])
    if "intensity" in operations:
        scale_shift = tf.random.stateless_uniform([2], seeds[5], minval=-0.1, maxval=0.1)
        volume = volume * (1.0 + scale_shift[0]) + scale_shift[1]
    return volume


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    seed: int,
    training_config: TrainingConfig | None = None,
    sample_weight: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A batched pipeline over in-memory arrays; training ones are shuffled (and augmented)."""
    tensors = (x, y) if sample_weight is None else (x, y, sample_weight)
    dataset = tf.data.Dataset.from_tensor_slices(tensors).cache()
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        if training_config is not None and training_config.augment and training_config.augmentations:
            operations = tuple(training_config.augmentations)
            counter = tf.data.Dataset.counter()
            element_seeds = counter.map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
            dataset = tf.data.Dataset.zip((dataset, element_seeds)).map(
                lambda data, element_seed: (_augment(data[0], element_seed, operations),) + tuple(data[1:]),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
