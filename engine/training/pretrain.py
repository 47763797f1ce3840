"""Self-supervised pretraining by rotation prediction: the dataset's volumes, labels unused.

A run with ``training.pretext = "rotation"`` trains the architecture to tell which of four rotations
was applied to a volume (Gidaris et al., 2018, "Unsupervised representation learning by predicting
image rotations", in 3D). Each volume of a split appears four times, once per rotation, so the four
classes are balanced and the validation and test numbers are the accuracy of telling them apart.
Everything else is an ordinary run (store, curves, checkpoints), and a later run starts from it with
``training.init_from = "run:<id>"``: its blocks are loaded and its output layer rebuilt.

The rotations keep the volume's shape:
- quarter turns (0, 90, 180, 270 degrees) in the first plane whose two edges are equal (height x width
  for axial stacks), the usual choice;
- otherwise the half turns about each of the three axes (identity, and 180 degrees about depth,
  height, width), which fit any box.
"""

from __future__ import annotations

import dataclasses

import numpy as np

QUARTER_TURNS = ("0°", "90°", "180°", "270°")
HALF_TURNS = ("identity", "180° about depth", "180° about height", "180° about width")
ROTATIONS = len(QUARTER_TURNS)
# The planes tried for quarter turns, in order: (height, width), (depth, width), (depth, height).
_PLANES = ((1, 2), (0, 2), (0, 1))


def quarter_turn_plane(volume_shape) -> tuple[int, int] | None:
    """The first plane (two axes of a (D, H, W, C) volume) whose edges are equal; None when there is none."""
    for plane in _PLANES:
        if volume_shape[plane[0]] == volume_shape[plane[1]]:
            return plane
    return None


def rotate(volume: np.ndarray, rotation: int, plane: tuple[int, int] | None) -> np.ndarray:
    """``volume`` (D, H, W, C) under rotation ``rotation`` (0..3) of the set chosen for its shape."""
    if plane is not None:
        return np.rot90(volume, k=rotation, axes=plane)
    if rotation == 0:
        return volume
    # A half turn about one axis reverses the other two.
    axes = tuple(axis for axis in range(3) if axis != rotation - 1)
    return np.flip(volume, axis=axes)


class RotatedRows:
    """A split's volumes four times over: position p is volume p // 4 under rotation p % 4.

    Indexed like ``engine.training.pipeline.VolumeRows`` (``len``, ``shape``, ``volume_shape``,
    positions as an int, a slice or an array), so the tf.data pipeline and the in-memory cache read it
    unchanged.
    """

    def __init__(self, rows):
        self.rows = rows
        self.plane = quarter_turn_plane(tuple(rows.shape[1:]))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.rows.shape[1:])

    @property
    def volume_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def __len__(self) -> int:
        return len(self.rows) * ROTATIONS

    def __getitem__(self, positions) -> np.ndarray:
        positions = np.arange(len(self))[positions]
        flat = np.atleast_1d(positions)
        volumes = self.rows[flat // ROTATIONS]
        batch = np.stack([
            np.ascontiguousarray(rotate(volume, int(turn), self.plane))
            for volume, turn in zip(volumes, flat % ROTATIONS)
        ]).astype(np.float32, copy=False)
        return batch[0] if np.ndim(positions) == 0 else batch


def rotation_labels(count: int) -> np.ndarray:
    """The rotation index of each position of a ``RotatedRows`` of ``count`` volumes."""
    return np.tile(np.arange(ROTATIONS, dtype=np.int64), count)


def pretext_data(store, run_id: int, config, data):
    """``data`` (a ``PreparedData``) as the rotation task when the run is a pretraining run; else unchanged.

    The dataset's labels are dropped; the store records the four rotation classes as the run's classes.
    """
    if config.training.pretext != "rotation":
        return data
    x_train, x_val, x_test = RotatedRows(data.x_train), RotatedRows(data.x_val), RotatedRows(data.x_test)
    names = list(QUARTER_TURNS if x_train.plane is not None else HALF_TURNS)
    store.update_run(run_id, num_classes=ROTATIONS, class_names=names)
    plane = ("quarter turns in the " + " x ".join(("depth", "height", "width")[axis] for axis in x_train.plane)
             + " plane") if x_train.plane is not None else "half turns about each axis (no two edges are equal)"
    store.log_event(
        run_id, f"self-supervised pretraining: rotation prediction ({plane}); the dataset's labels are not used, "
                f"each volume appears once per rotation ({len(x_train)} training samples)",
    )
    return dataclasses.replace(
        data,
        x_train=x_train, y_train=rotation_labels(len(data.x_train)),
        x_val=x_val, y_val=rotation_labels(len(data.x_val)),
        x_test=x_test, y_test=rotation_labels(len(data.x_test)),
        val_ids=np.repeat(np.asarray(data.val_ids), ROTATIONS),
        test_ids=np.repeat(np.asarray(data.test_ids), ROTATIONS),
        num_classes=ROTATIONS,
        class_names=names,
    )
