"""Random 3D augmentation of one training volume, in TensorFlow ops inside the tf.data pipeline.

Every draw is a stateless random op seeded from the volume's own seed (the run
seed and its position in the epoch's stream, ``engine.training.pipeline``), so
a run is reproducible with augmentation on, and the Train page's preview
(``python -m engine augment-preview``) shows the very volumes the network gets.

flip, rotate90, shift and intensity apply to every volume (as before this
module existed, with the same draws). rotate, scale, noise, gamma and blur each
apply with their own probability and strength (``engine.config.AUGMENT_KNOBS``):

- rotate and scale are one affine map about the volume's centre, resampled
  trilinearly (eight gathers); points that fall outside take the nearest edge
  voxel, so no black corners appear and values stay within the volume's range;
- noise adds Gaussian noise relative to the volume's own standard deviation,
  so it means the same whatever the normalisation;
- gamma maps intensities through x**g on the volume's own min-max range (the
  range is kept);
- blur is a separable Gaussian (three 1D convolutions, edges mirrored).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import tensorflow as tf

from engine.config import AUGMENT_KNOBS, TrainingConfig


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    """Which augmentations apply and each one's (probability, strength), fixed while a graph is traced."""

    operations: tuple[str, ...]
    knobs: tuple[tuple[str, float, float], ...] = ()  # (name, probability, strength)

    @classmethod
    def from_training(cls, training: TrainingConfig) -> AugmentSettings:
        operations = tuple(training.augmentations) if training.augment else ()
        knobs = tuple(
            (name, float(getattr(training, probability)), float(getattr(training, strength)))
            for name, (probability, strength) in AUGMENT_KNOBS.items()
        )
        return cls(operations, knobs)

    def probability(self, name: str) -> float:
        return next((p for n, p, _ in self.knobs if n == name), 0.0) if name in self.operations else 0.0

    def strength(self, name: str) -> float:
        return next((s for n, _, s in self.knobs if n == name), 0.0)

    def active(self, name: str) -> bool:
        """In the list, with a probability and a strength above 0 (anything else would change nothing)."""
        return self.probability(name) > 0 and self.strength(name) > 0


def _applies(seed: tf.Tensor, probability: float) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed) < probability


def _axis_rotation(angle: tf.Tensor, axis: int) -> tf.Tensor:
    """The 3x3 rotation by ``angle`` (radians) in the plane of the two axes other than ``axis``."""
    cos, sin = tf.cos(angle), tf.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    rows = [[tf.constant(1.0 if i == j else 0.0) for j in range(3)] for i in range(3)]
    rows[first][first], rows[first][second] = cos, -sin
    rows[second][first], rows[second][second] = sin, cos
    return tf.stack([tf.stack(row) for row in rows])


def resample_affine(volume: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """``volume`` (D, H, W, C) sampled at ``matrix @ (p - centre) + centre`` for each voxel p, trilinearly.

    ``matrix`` maps an output voxel to where it is read in the input; points outside are read at the
    nearest edge voxel. Each output is a convex combination of input voxels, so the range is kept.
    """
    shape = tf.shape(volume)
    spatial = shape[:3]
    grid = tf.stack(tf.meshgrid(tf.range(spatial[0]), tf.range(spatial[1]), tf.range(spatial[2]), indexing="ij"), -1)
    centre = (tf.cast(spatial, tf.float32) - 1.0) / 2.0
    coordinates = tf.einsum("ij,dhwj->dhwi", matrix, tf.cast(grid, tf.float32) - centre) + centre
    coordinates = tf.clip_by_value(coordinates, 0.0, tf.cast(spatial - 1, tf.float32))
    low = tf.floor(coordinates)
    fraction = coordinates - low
    low_index = tf.cast(low, tf.int32)
    high_index = tf.minimum(low_index + 1, spatial - 1)
    # Gathers from the flattened volume by linear index (half again as fast as gather_nd on (D, H, W, C)).
    flat = tf.reshape(volume, [-1, shape[3]])
    strides = (spatial[1] * spatial[2], spatial[2], 1)
    offsets = [(low_index[..., axis] * strides[axis], high_index[..., axis] * strides[axis]) for axis in range(3)]
    weights = [(1.0 - fraction[..., axis], fraction[..., axis]) for axis in range(3)]
    result = tf.zeros_like(volume)
    for d, h, w in itertools.product((0, 1), repeat=3):
        index = offsets[0][d] + offsets[1][h] + offsets[2][w]
        weight = weights[0][d] * weights[1][h] * weights[2][w]
        result += weight[..., None] * tf.gather(flat, index)
    return result


def _rotate_and_scale(volume: tf.Tensor, seeds: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    rotate = _applies(seeds[0], settings.probability("rotate")) if settings.active("rotate") else tf.constant(False)
    scale = _applies(seeds[1], settings.probability("scale")) if settings.active("scale") else tf.constant(False)
    limit = math.radians(settings.strength("rotate"))
    angles = tf.random.stateless_uniform([3], seeds[2], -limit, limit) * tf.cast(rotate, tf.float32)
    spread = settings.strength("scale")
    factor = 1.0 + tf.random.stateless_uniform([], seeds[3], -spread, spread) * tf.cast(scale, tf.float32)
    rotation = _axis_rotation(angles[0], 0) @ _axis_rotation(angles[1], 1) @ _axis_rotation(angles[2], 2)
    # Output voxel -> input position: the inverse rotation (its transpose), divided by the zoom factor.
    matrix = tf.transpose(rotation) / factor
    return tf.cond(rotate | scale, lambda: resample_affine(volume, matrix), lambda: volume)


def _gaussian_kernel(sigma: tf.Tensor, radius: int) -> tf.Tensor:
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(offsets / sigma))
    return kernel / tf.reduce_sum(kernel)


def gaussian_blur(volume: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """``volume`` (D, H, W, C) blurred by a Gaussian of ``sigma`` voxels, cut at ``radius``; edges mirrored."""
    kernel = _gaussian_kernel(sigma, radius)
    channels_first = tf.transpose(volume, [3, 0, 1, 2])[..., None]  # (C, D, H, W, 1): channels as a batch
    for axis in range(3):
        edge = volume.shape[axis]
        reach = radius if edge is None else min(radius, int(edge) - 1)  # a mirror pad cannot exceed the edge
        if reach <= 0:
            continue
        paddings = [[0, 0]] * 5
        paddings[axis + 1] = [reach, reach]
        padded = tf.pad(channels_first, paddings, mode="SYMMETRIC")
        taps = kernel[radius - reach : radius + reach + 1]
        taps = taps / tf.reduce_sum(taps)
        shape = [1, 1, 1, 1, 1]
        shape[axis] = 2 * reach + 1
        channels_first = tf.nn.conv3d(padded, tf.reshape(taps, shape), strides=[1] * 5, padding="VALID")
    return tf.transpose(channels_first[..., 0], [1, 2, 3, 0])


def _blur(volume: tf.Tensor, seeds: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    most = settings.strength("blur")
    radius = max(1, math.ceil(3 * most))
    sigma = tf.random.stateless_uniform([], seeds[1], most / 2, most)
    return tf.cond(_applies(seeds[0], settings.probability("blur")),
                   lambda: gaussian_blur(volume, sigma, radius), lambda: volume)


def _gamma(volume: tf.Tensor, seeds: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    reach = math.log1p(settings.strength("gamma"))
    gamma = tf.exp(tf.random.stateless_uniform([], seeds[1], -reach, reach))
    low, high = tf.reduce_min(volume), tf.reduce_max(volume)
    spread = high - low

    def apply() -> tf.Tensor:
        unit = tf.clip_by_value((volume - low) / spread, 0.0, 1.0)
        return tf.clip_by_value(tf.pow(unit, gamma) * spread + low, low, high)

    return tf.cond(_applies(seeds[0], settings.probability("gamma")) & (spread > 0), apply, lambda: volume)


def _noise(volume: tf.Tensor, seeds: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    most = settings.strength("noise")
    scale = tf.random.stateless_uniform([], seeds[1], most / 2, most) * tf.math.reduce_std(volume)
    noise = tf.random.stateless_normal(tf.shape(volume), seeds[2]) * scale
    return tf.cond(_applies(seeds[0], settings.probability("noise")), lambda: volume + noise, lambda: volume)


def augment_volume(volume: tf.Tensor, seed: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    """One (D, H, W, C) float32 volume augmented from ``seed`` (shape [2]): spatial first, then intensities."""
    operations = settings.operations
    # The first four keep the draws they had before the others existed.
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    more = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, 1), num=16)
    if "flip" in operations:
        for axis in range(3):
            flip = tf.random.stateless_uniform([], seeds[axis]) < 0.5
            volume = tf.cond(flip, lambda v=volume, a=axis: tf.reverse(v, axis=[a]), lambda v=volume: v)
    # Rotate in the H-W plane (axial slices), as the test-time views do; needs H == W to keep the shape.
    # On a 4D tensor rot90 takes axis 0 as the batch and turns axes 1 and 2: (D, H, W, C) as it is.
    # (Before, the volume was transposed to (H, W, D, C) first, which turned the W-D plane instead and
    # changed the shape of a volume with D != W.)
    if "rotate90" in operations and volume.shape[1] == volume.shape[2]:
        turns = tf.random.stateless_uniform([], seeds[3], minval=0, maxval=4, dtype=tf.int32)
        volume = tf.image.rot90(volume, k=turns)
    if settings.active("rotate") or settings.active("scale"):
        volume = _rotate_and_scale(volume, more[0:4], settings)
    if "shift" in operations:
        # Shift by up to 1/8 of each spatial edge, wrapping around (roll).
        shape = tf.shape(volume)
        limits = tf.maximum(shape[:3] // 8, 1)
        shifts = tf.random.stateless_uniform([3], seeds[4], minval=-1.0, maxval=1.0)
        shifts = tf.cast(tf.round(shifts * tf.cast(limits, tf.float32)), tf.int32)
        volume = tf.roll(volume, shift=shifts, axis=[0, 1, 2])
    if settings.active("blur"):
        volume = _blur(volume, more[4:6], settings)
    if settings.active("gamma"):
        volume = _gamma(volume, more[6:8], settings)
    if "intensity" in operations:
        scale_shift = tf.random.stateless_uniform([2], seeds[5], minval=-0.1, maxval=0.1)
        volume = volume * (1.0 + scale_shift[0]) + scale_shift[1]
    if settings.active("noise"):
        volume = _noise(volume, more[8:11], settings)
    return volume
