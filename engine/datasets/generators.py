"""Built-in volumetric datasets, generated offline and deterministically from a seed.

Each generator takes its (already validated) options and returns
``(x, y, groups)``: volumes as float32 (N, D, H, W) in [0, 1] before noise,
integer labels, and a group id per sample (or None when every sample is its
own group).
"""

from __future__ import annotations

import numpy as np

Generated = tuple[np.ndarray, np.ndarray, np.ndarray | None]


# ------------------------------------------------------------------ digits3d
def _digit_point_cloud(image: np.ndarray, thickness: float, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Extrude one 8x8 digit into points (P, 3) in roughly [-0.5, 0.5]^3, weighted by ink (P,)."""
    rows, cols = np.nonzero(image)
    ink = image[rows, cols] / 16.0
    # Four points per pixel (a 2x2 sub-grid) so a rotated digit voxelises without holes.
    sub = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])
    xs = ((cols[:, None] + sub[None, :, 1]) / 8.0 - 0.5).reshape(-1)
    ys = (0.5 - (rows[:, None] + sub[None, :, 0]) / 8.0).reshape(-1)
    weights = np.repeat(ink, len(sub))
    depths = np.linspace(-thickness / 2, thickness / 2, layers)
    points = np.stack(
        [np.tile(xs, layers), np.tile(ys, layers), np.repeat(depths, len(xs))], axis=1
    )
    return points, np.tile(weights, layers)


def digits3d(options: dict) -> Generated:
    """3D-MNIST-style digits: scikit-learn's 1,797 digits extruded, rotated, jittered and voxelised."""
    from scipy.spatial.transform import Rotation
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    size = int(options["size"])
    copies = int(options["copies"])
    max_angle = float(options["max_rotation_degrees"])
    jitter = float(options["jitter"])
    limit = options.get("num_samples") or len(digits.images)
    images, labels = digits.images[:limit], digits.target[:limit]
    rng = np.random.default_rng(int(options["seed"]))

    x = np.zeros((len(images) * copies, size, size, size), dtype=np.float32)
    y = np.repeat(labels, copies).astype(np.int64)
    groups = np.repeat(np.arange(len(images)), copies).astype(np.int64)
    edges = np.linspace(0.0, 1.0, size + 1)
    for index, image in enumerate(images):
        points, weights = _digit_point_cloud(image, thickness=0.25, layers=max(4, size // 2))
        for copy in range(copies):
            angles = rng.uniform(-max_angle, max_angle, size=3)
            rotated = Rotation.from_euler("xyz", angles, degrees=True).apply(points)
            rotated += rng.normal(0.0, jitter, size=rotated.shape)
            # Fit [-0.5, 0.5] into the grid with a small margin.
            grid = rotated * 0.85 + 0.5
            volume, _ = np.histogramdd(grid, bins=(edges, edges, edges), weights=weights)
            peak = volume.max()
            # histogramdd's axes are (x, y, z); store as (depth=z, height=y, width=x), y pointing up.
            volume = np.transpose(volume, (2, 1, 0))[:, ::-1, :]
            x[index * copies + copy] = volume / peak if peak > 0 else volume
    return x, y, groups


# ----------------------------------------------------------- phantom_lesions
def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.meshgrid(axis, axis, axis, indexing="ij")


def _ellipsoid(z, y, x, centre, axes, softness: float) -> np.ndarray:
    """A soft-edged ellipsoid mask in [0, 1]."""
    r = np.sqrt(((z - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 + ((x - centre[2]) / axes[2]) ** 2)
    return np.clip((1.0 - r) / softness + 0.5, 0.0, 1.0)


def _phantom(rng: np.random.Generator, size: int, lesions: int, contrast: float, lesion_size: float, noise: float):
    z, y, x = _grid(size)
    # Smooth deformation: low-frequency sinusoidal displacement of the coordinates.
    amplitude = rng.uniform(0.02, 0.06, size=3)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    frequency = rng.uniform(1.5, 3.0, size=3)
    zd = z + amplitude[0] * np.sin(frequency[0] * y + phase[0])
    yd = y + amplitude[1] * np.sin(frequency[1] * x + phase[1])
    xd = x + amplitude[2] * np.sin(frequency[2] * z + phase[2])

    head_axes = np.array([rng.uniform(0.78, 0.9), rng.uniform(0.68, 0.82), rng.uniform(0.82, 0.94)])
    softness = 2.0 / size * 3
    skull = _ellipsoid(zd, yd, xd, (0, 0, 0), head_axes, softness)
    brain_axes = head_axes * rng.uniform(0.84, 0.88)
    brain = _ellipsoid(zd, yd, xd, (0, 0, 0), brain_axes, softness)
    volume = 0.9 * (skull - brain) + 0.4 * brain
    # Ventricles: two darker ellipsoids near the centre.
    for side in (-1, 1):
        centre = (rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.1), side * rng.uniform(0.1, 0.16))
        axes = (rng.uniform(0.2, 0.3), rng.uniform(0.08, 0.14), rng.uniform(0.06, 0.09))
        volume -= 0.25 * _ellipsoid(zd, yd, xd, centre, axes, softness) * brain
    # Tissue texture: a few broad, faint blobs.
    for _ in range(rng.integers(3, 7)):
        centre = rng.uniform(-0.5, 0.5, size=3) * brain_axes
        axes = rng.uniform(0.15, 0.35, size=3)
        volume += rng.uniform(-0.08, 0.08) * _ellipsoid(zd, yd, xd, centre, axes, 1.0) * brain
    # Lesions: small bright spheres well inside the brain.
    # In the [-1, 1] frame: 2.5 voxels at 32^3 for lesion_size 1, the same anatomy at any size.
    radius = lesion_size * 2.5 * 2.0 / 32
    for _ in range(lesions):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        centre = direction * rng.uniform(0.0, 0.55) * brain_axes
        r = radius * rng.uniform(0.8, 1.25)
        volume += contrast * _ellipsoid(z, y, x, centre, (r, r, r), softness)
    # Bias field: a smooth multiplicative gradient in a random direction.
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    volume *= 1.0 + rng.uniform(0.05, 0.2) * (direction[0] * z + direction[1] * y + direction[2] * x)
    volume += rng.normal(0.0, noise, size=volume.shape).astype(np.float32)
    return volume.astype(np.float32)


def phantom_lesions(options: dict) -> Generated:
    """Binary: procedurally varied head phantoms; positives carry 1-3 small lesions."""
    count = int(options["num_samples"])
    size = int(options["size"])
    rng = np.random.default_rng(int(options["seed"]))
    positives = int(round(count * float(options["positive_fraction"])))
    y = np.zeros(count, dtype=np.int64)
    y[rng.permutation(count)[:positives]] = 1
    x = np.empty((count, size, size, size), dtype=np.float32)
    for index in range(count):
        lesions = int(rng.integers(1, 4)) if y[index] else 0
        x[index] = _phantom(
            rng, size, lesions, float(options["lesion_contrast"]), float(options["lesion_size"]),
            float(options["noise"]),
        )
    return x, y, None


# ------------------------------------------------------------------ shapes3d
def shapes3d(options: dict) -> Generated:
    """Tiny and trivially separable, for fast tests.

    mode "shape": a cube (class 0) or a ball (class 1) of random size and position.
    mode "location": the same cube either in the left (class 0) or the right
    (class 1) half along the width axis; the classes differ only by where the
    object sits, which is what a saliency map should find.
    """
    count = int(options["num_samples"])
    size = int(options["size"])
    noise = float(options["noise"])
    rng = np.random.default_rng(int(options["seed"]))
    y = np.arange(count, dtype=np.int64) % 2
    rng.shuffle(y)
    z, yy, x = np.meshgrid(*(np.arange(size),) * 3, indexing="ij")
    volumes = np.empty((count, size, size, size), dtype=np.float32)
    for index, label in enumerate(y):
        half = max(1, int(rng.integers(max(1, size // 8), max(2, size // 4) + 1)))
        if options["mode"] == "location":
            low, high = half, size // 2 - half  # centre range inside one half
            cx = int(rng.integers(low, max(low + 1, high)))
            if label == 1:
                cx = size - 1 - cx
            cz, cy = (int(rng.integers(half, size - half)) for _ in range(2))
            mask = (abs(z - cz) <= half) & (abs(yy - cy) <= half) & (abs(x - cx) <= half)
        else:
            cz, cy, cx = (int(rng.integers(half, size - half)) for _ in range(3))
            if label == 0:
                mask = (abs(z - cz) <= half) & (abs(yy - cy) <= half) & (abs(x - cx) <= half)
            else:
                mask = (z - cz) ** 2 + (yy - cy) ** 2 + (x - cx) ** 2 <= (half + 0.5) ** 2
        volume = mask.astype(np.float32) + rng.normal(0.0, noise, size=mask.shape).astype(np.float32)
        volumes[index] = volume
    return volumes, y, None
