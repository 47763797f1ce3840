"""tf.data input pipelines that read volumes from disk a batch at a time; augmentation on training data only.

A split is a ``VolumeRows``: the dataset's memory-mapped volume array and the
row indices of the split. The pipeline holds only those indices, the labels and
(optionally) sample weights in memory; each batch's volumes are read from disk
inside the pipeline, normalised per volume, augmented, and at most
``READ_AHEAD_BATCHES`` batches are prepared ahead of the model. So a dataset
larger than RAM trains in bounded memory.

Labels are encoded for the model's head: one sigmoid unit for two classes
(float (N, 1)), one-hot (N, C) for softmax. Shuffling is seeded and
augmentation uses stateless random ops seeded from the run seed, so a run is
reproducible with augmentation on.
"""

from __future__ import annotations

import mmap
import os

import numpy as np
import tensorflow as tf

from engine.config import TrainingConfig
from engine.datasets import normalize
from engine.errors import DataError
from engine.training import augment

# Batches read (and augmented) ahead of the one the model trains on: enough to
# keep the model busy while the next rows come from disk, few enough that the
# volumes in memory stay a small multiple of one batch.
READ_AHEAD_BATCHES = 2

# A split is held in memory (read and normalised once, then indexed each epoch) when the splits held so
# far and it fit in this fraction of the memory the kernel reports available (MemAvailable); otherwise it
# is read from disk a batch at a time as above. CONV3D_LAB_INPUT_CACHE_FRACTION overrides the fraction
# (0 turns the cache off). A quarter leaves room for the model, TensorFlow and other runs.
INPUT_CACHE_FRACTION = 0.25
INPUT_CACHE_FRACTION_ENV = "CONV3D_LAB_INPUT_CACHE_FRACTION"


def _file_offset(volumes) -> int | None:
    """Where row 0 of ``volumes`` starts in its file, when it is a whole C-ordered memory map; else None."""
    if (
        isinstance(volumes, np.memmap)
        and isinstance(volumes.base, mmap.mmap)  # the map itself, not a view (a view keeps its parent's offset)
        and volumes.filename
        and volumes.flags.c_contiguous
    ):
        return int(volumes.offset)
    return None


def read_rows(volumes, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of ``volumes`` (N, ...) as a new float32 array in the order given, reading only those rows.

    Rows are read in ascending order (sequential disk access). A memory map
    (what ``engine.datasets`` returns) is read with positioned reads from its
    file, not through the mapping: every page touched through a mapping counts
    in the process's resident memory until the kernel reclaims it, so one epoch
    over a 4 GB memory map would show 4 GB resident (nanoGPT recreates its
    memmap every batch for the same reason). Plain reads go through the page
    cache, which the kernel can always drop. Anything else that can be indexed
    by an integer array (an in-memory array) is indexed.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    row_shape = tuple(volumes.shape[1:])
    offset = _file_offset(volumes)
    if offset is None:
        gathered = np.asarray(volumes[sorted_rows], dtype=np.float32)
    else:
        gathered = np.empty((len(rows), *row_shape), dtype=volumes.dtype)
        as_bytes = gathered.reshape(len(rows), -1).view(np.uint8)
        row_bytes = as_bytes.shape[1]
        file_descriptor = os.open(volumes.filename, os.O_RDONLY)
        try:
            for position, row in enumerate(sorted_rows):
                read = os.preadv(file_descriptor, [as_bytes[position]], offset + int(row) * row_bytes)
                if read != row_bytes:
                    raise DataError(
                        f"{volumes.filename} ends inside volume {int(row)}; the file is truncated. "
                        "Delete it so the dataset is rebuilt."
                    )
        finally:
            os.close(file_descriptor)
        gathered = gathered.astype(np.float32, copy=False)
    out = np.empty_like(gathered)
    out[order] = gathered
    return out


class VolumeRows:
    """The volumes of one split, read from disk only when indexed, normalised per volume on read.

    ``volumes`` is the dataset's (N, D, H, W, C) array (usually a read-only
    memory map) and ``indices`` the rows that make up the split. It acts like a
    read-only float32 array of shape (len(indices), D, H, W, C) for ``len``,
    ``shape`` and indexing by position (an int, a slice or an integer array),
    so a few volumes can be taken (saliency maps) without reading the rest.
    """

    def __init__(self, volumes, indices: np.ndarray, normalization: str = "none"):
        self.volumes = volumes
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.normalization = normalization

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *(int(edge) for edge in self.volumes.shape[1:]))

    @property
    def volume_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions) -> np.ndarray:
        positions = np.arange(len(self.indices))[positions]  # ints, slices and arrays, with bounds checks
        rows = self.indices[np.atleast_1d(positions)]
        batch = normalize(read_rows(self.volumes, rows), self.normalization)
        return batch[0] if np.ndim(positions) == 0 else batch


def memory_available_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable from /proc/meminfo in bytes; None where the kernel does not say."""
    try:
        with open(meminfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cache_fraction() -> float:
    raw = os.environ.get(INPUT_CACHE_FRACTION_ENV, "").strip()
    if not raw:
        return INPUT_CACHE_FRACTION
    try:
        value = float(raw)
    except ValueError:
        raise DataError(
            f"{INPUT_CACHE_FRACTION_ENV}={raw!r} is not a number; give a fraction such as 0.25 (0 turns the "
            "in-memory cache off) or unset it."
        ) from None
    return min(max(value, 0.0), 1.0)


def split_bytes(rows: VolumeRows) -> int:
    """Bytes of the split as float32 volumes in memory."""
    return int(np.prod(rows.shape, dtype=np.int64)) * 4


def plan_cache(splits: list[VolumeRows], available: int | None = None, fraction: float | None = None
               ) -> tuple[bool, str]:
    """(hold in memory?, reason) for these splits together, against ``fraction`` of ``available`` bytes."""
    fraction = cache_fraction() if fraction is None else fraction
    available = memory_available_bytes() if available is None else available
    needed = sum(split_bytes(rows) for rows in splits)
    if fraction <= 0:
        return False, f"volumes read from disk per batch (in-memory cache off: {INPUT_CACHE_FRACTION_ENV}=0)"
    if available is None:
        return False, "volumes read from disk per batch (the free memory is unknown here)"
    budget = int(available * fraction)
    if needed <= budget:
        return True, (f"volumes cached in memory: {needed / 2**20:,.0f} MiB fit in {fraction:.0%} of the "
                      f"{available / 2**30:,.1f} GiB available")
    return False, (f"volumes read from disk per batch: {needed / 2**20:,.0f} MiB exceed {fraction:.0%} of the "
                   f"{available / 2**30:,.1f} GiB available")


def in_memory(rows: VolumeRows) -> VolumeRows:
    """The split read and normalised once into memory, indexed like ``rows``."""
    return VolumeRows(rows[np.arange(len(rows))], np.arange(len(rows)), "none")


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


def make_dataset(
    volumes: VolumeRows | np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    seed: int,
    training_config: TrainingConfig | None = None,
    sample_weight: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A batched pipeline that reads each batch's volumes when it is needed; training ones are shuffled (and augmented).

    Only sample positions, ``y`` and ``sample_weight`` are held in memory. The
    training split is reshuffled every epoch from ``seed``; other splits keep
    their order. ``volumes`` may also be an in-memory array (read as is).
    """
    if not isinstance(volumes, VolumeRows):
        volumes = VolumeRows(volumes, np.arange(len(volumes)))
    positions = np.arange(len(volumes), dtype=np.int64)
    tensors = (positions, y) if sample_weight is None else (positions, y, sample_weight)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if training:
        # Shuffling positions, not volumes: the buffer is the whole split at 8 bytes a sample.
        dataset = dataset.shuffle(len(volumes), seed=seed, reshuffle_each_iteration=True)
    volume_shape = volumes.volume_shape

    def read_batch(batch_positions, *rest):
        # stateful=False: the read is a pure function of the positions, so op
        # determinism allows it to run in parallel.
        batch = tf.numpy_function(volumes.__getitem__, [batch_positions], tf.float32, stateful=False)
        batch.set_shape((None, *volume_shape))
        return (batch, *rest)

    dataset = dataset.batch(batch_size).map(
        read_batch, num_parallel_calls=READ_AHEAD_BATCHES, deterministic=True
    )
    if training and training_config is not None and training_config.augment and training_config.augmentations:
        settings = augment.AugmentSettings.from_training(training_config)

        def augment_batch(batch_index, data):
            # Each volume's seed is (run seed, its position in this epoch's stream).
            volumes_in_batch = data[0]
            first = batch_index * batch_size
            positions_in_stream = first + tf.range(tf.shape(volumes_in_batch, out_type=tf.int64)[0])
            seeds = tf.stack([tf.fill(tf.shape(positions_in_stream), tf.cast(seed, tf.int64)), positions_in_stream], 1)
            augmented = tf.map_fn(
                lambda pair: augment.augment_volume(pair[0], pair[1], settings),
                (volumes_in_batch, seeds),
                fn_output_signature=tf.float32,
            )
            return (augmented, *data[1:])

        dataset = dataset.enumerate().map(augment_batch, num_parallel_calls=READ_AHEAD_BATCHES, deterministic=True)
    return dataset.prefetch(READ_AHEAD_BATCHES)
