"""Measure the doctor's near-duplicate check: which shifted / noisy copies it finds, and its false positives.

    python tools/near_duplicate_tolerance.py [--samples 60] [--size 16]

For each built-in set (small options) it plants, in a copy of the validation split, a copy of a training
volume shifted by S voxels along every axis (0-3) with Gaussian noise of sigma N grey levels on a 0-255 scale
(N as a share of the source's intensity range, 0-15), and prints the share of planted copies found; then the
number of distinct samples flagged when nothing is planted (its false positives) and the check's time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CONV3D_LAB_HOME", tempfile.mkdtemp(prefix="near-duplicates-"))

from engine import datasets  # noqa: E402
from engine.doctor import data  # noqa: E402

SHIFTS = (0, 1, 2, 3)
NOISE_GREY = (0, 2, 5, 8, 10, 15)
SETS = {
    "shapes3d": lambda n, size: {"num_samples": n, "size": size},
    "phantom_lesions": lambda n, size: {"num_samples": n, "size": max(16, size)},
    "digits3d": lambda n, size: {"num_samples": n, "size": size},
}


def planted(x: np.ndarray, source: int, shift: int, grey: float, rng: np.random.Generator) -> np.ndarray:
    """The source moved by ``shift`` voxels along each axis (the edge voxels repeated into the gap) plus noise."""
    from scipy import ndimage

    volume = np.asarray(x[source], dtype=np.float32)
    volume = volume.reshape(volume.shape[:3])
    moved = ndimage.shift(volume, (shift, shift, shift), order=0, mode="nearest")
    noise = rng.normal(0.0, grey / 255 * data.intensity_range(volume), moved.shape).astype(np.float32)
    return (moved + noise).reshape(np.shape(x[source]))


def closest_distinct(x: np.ndarray, parts: dict[str, np.ndarray]) -> float:
    """The smallest aligned difference between a volume and any of its signature candidates in another split."""
    smallest = float("inf")
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        vectors, centres, ranges = data.profiles(x, parts[first])
        other_vectors, other_centres, _ = data.profiles(x, parts[second])
        similarity = other_vectors @ vectors.T
        for row, nearest in enumerate(np.argsort(-similarity, axis=1)[:, :data.NEAR_DUPLICATE_CANDIDATES]):
            for candidate in nearest:
                difference, _ = data.aligned_difference(
                    np.asarray(x[parts[first][candidate]]).reshape(x.shape[1:4]),
                    np.asarray(x[parts[second][row]]).reshape(x.shape[1:4]),
                    centres=(centres[candidate], other_centres[row]), scale=ranges[candidate])
                smallest = min(smallest, difference)
    return smallest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--copies", type=int, default=10, help="planted copies per (shift, noise) cell")
    args = parser.parse_args()
    print(f"max shift {data.NEAR_DUPLICATE_MAX_SHIFT} voxels, max difference {data.NEAR_DUPLICATE_DIFFERENCE} "
          f"of the range ({data.NEAR_DUPLICATE_DIFFERENCE * 255:.1f} grey levels of 255)")
    for name, options in SETS.items():
        dataset = datasets.load_dataset(name, options(args.samples, args.size))
        splits = datasets.make_splits(dataset, 0.2, 0.2, seed=0)
        x = np.asarray(dataset.x)
        parts = {"train": splits.train, "val": splits.val, "test": splits.test}
        started = time.perf_counter()
        clean = data.leakage_findings(x, parts, None)
        seconds = time.perf_counter() - started
        false = sum(f.evidence["pairs"].get(k, 0) for f in clean if f.id == "near_duplicates"
                    for k in f.evidence["pairs"])
        nearest = closest_distinct(x, parts)
        print(f"\n{name} ({len(x)} volumes of {x.shape[1:4]}): {false} false positive(s) among distinct samples; "
              f"the closest distinct pair differs by {nearest:.3f} of the range ({nearest * 255:.1f} grey levels); "
              f"{seconds:.2f} s for the leakage check")
        print("shift \\ noise (grey) " + "".join(f"{g:>6}" for g in NOISE_GREY))
        rng = np.random.default_rng(0)
        for shift in SHIFTS:
            cells = []
            for grey in NOISE_GREY:
                sources = rng.choice(splits.train, size=min(args.copies, len(splits.train)), replace=False)
                copies = np.stack([planted(x, int(s), shift, grey, rng) for s in sources])
                bigger = np.concatenate([x, copies])
                extra = np.arange(len(x), len(bigger))
                pairs = data.near_duplicate_pairs(bigger, splits.train, extra)
                found = sum(1 for a, b, _, _ in pairs if splits.train[a] == sources[b])
                cells.append(found / len(sources))
            print(f"{shift:>21} " + "".join(f"{c:>6.0%}" for c in cells))
    dataset = datasets.load_dataset("phantom_lesions", {"num_samples": 400, "size": 32})
    splits = datasets.make_splits(dataset, 0.15, 0.15, seed=0)
    started = time.perf_counter()
    found = data.leakage_findings(dataset.x, {"train": splits.train, "val": splits.val, "test": splits.test}, None)
    print(f"\nphantom_lesions defaults (400 volumes of 32^3): leakage check {time.perf_counter() - started:.1f} s, "
          f"findings {[f.id for f in found] or 'none'}")


if __name__ == "__main__":
    main()
