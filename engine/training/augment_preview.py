"""The first training volumes of a run's first epoch, before and after augmentation (imports TensorFlow).

The volumes come out of ``pipeline.make_dataset`` itself, with the run's split,
seed, normalisation and augmentation settings: the same shuffle, the same
per-volume seeds, the same ops. "Before" is the same pipeline with augmentation
off (the shuffle order does not depend on it). So the preview is what the
network is fed in its first batch, not a re-implementation of it.
``engine.probe.augmentation_preview`` runs this in a child process for the
dashboard (which never imports TensorFlow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import datasets
from engine.config import RunConfig
from engine.errors import DataError

# Volumes shown by default (the first ones of the first batch).
PREVIEW_VOLUMES = 4


def training_split(config: RunConfig) -> tuple[datasets.Dataset, np.ndarray]:
    """The dataset and the training rows a run of ``config`` would train on (the same split functions)."""
    dataset = datasets.load_dataset(config.data.dataset, config.data.options)
    if config.data.folds:
        splits = datasets.make_fold_splits(
            dataset, config.data.folds, config.data.fold or 0, config.data.test_fraction, seed=config.training.seed
        )
    else:
        splits = datasets.make_splits(
            dataset, config.data.val_fraction, config.data.test_fraction, seed=config.training.seed
        )
    return dataset, np.asarray(splits.train)


def first_batch(config: RunConfig, count: int = PREVIEW_VOLUMES) -> dict[str, Any]:
    """{"before", "after": (n, D, H, W, C) float32, "labels": class names} for the first n <= count volumes
    of epoch 1; n is also at most the batch size (the volumes of one batch)."""
    from engine.training.pipeline import VolumeRows, make_dataset

    if not (config.training.augment and config.training.augmentations):
        raise DataError("Augmentation is off in this configuration; turn it on (and pick augmentations) to preview it.")
    dataset, rows = training_split(config)
    labels = np.asarray(dataset.y[rows])
    volumes = VolumeRows(dataset.x, rows, config.data.normalization)
    size = max(1, min(int(count), int(config.training.batch_size), len(rows)))
    off = config.copy()
    off.training.augment = False
    batches = {}
    for name, training in (("before", off.training), ("after", config.training)):
        pipeline = make_dataset(volumes, labels, size, training=True, seed=config.training.seed,
                                training_config=training)
        batch, batch_labels = next(iter(pipeline))
        batches[name] = np.asarray(batch, dtype=np.float32)
        batches[name + "_labels"] = np.asarray(batch_labels)
    if not np.array_equal(batches["before_labels"], batches["after_labels"]):  # the shuffle must not differ
        raise DataError("The augmented and plain pipelines drew different volumes; the preview is not shown.")
    names = [str(dataset.class_names[int(i)]) for i in _class_indices(batches["before_labels"])]
    return {"before": batches["before"], "after": batches["after"], "labels": names}


def _class_indices(encoded: np.ndarray) -> np.ndarray:
    """Class indices from the model's label encoding (one sigmoid column or one-hot)."""
    encoded = np.asarray(encoded)
    if encoded.ndim == 2 and encoded.shape[1] > 1:
        return encoded.argmax(axis=1)
    return encoded.reshape(-1).round().astype(int)
