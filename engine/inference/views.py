"""Test-time views of a volume: the flips and 90° turns a run's training augmentation used (NumPy only).

The identity comes first, then the other views by how many operations they
combine (single-axis flips, then turns, then combinations), so ``--tta N``
takes a fixed, documented list: on a run trained with "flip", ``--tta 4`` is
the scan and its flips along D, H and W. "rotate90" turns the H-W plane (the
axial slices) as training did, and only when H == W.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from engine.errors import LabError
from engine.runs import RunRecord


@dataclass(frozen=True)
class View:
    """One test-time view of a (D, H, W, C) volume: flips of some spatial axes, then ``turns`` x 90° in H-W."""

    flips: tuple[int, ...] = ()
    turns: int = 0

    @property
    def name(self) -> str:
        parts = [f"flip {'DHW'[a]}" for a in self.flips] + ([f"rotate {90 * self.turns}°"] if self.turns else [])
        return " + ".join(parts) or "identity"

    def apply(self, volume: np.ndarray) -> np.ndarray:
        for axis in self.flips:
            volume = np.flip(volume, axis=axis)
        if self.turns:
            volume = np.rot90(volume, k=self.turns, axes=(1, 2))
        return np.ascontiguousarray(volume)


def tta_views(run: RunRecord, volume_shape: tuple[int, ...]) -> list[View]:
    """Every view the run's training augmentation allows, identity first, fewest operations first."""
    training = run.config.training
    allowed = set(training.augmentations) if training.augment else set()
    flip_sets = [()]
    if "flip" in allowed:
        flip_sets = [subset for size in range(4) for subset in itertools.combinations(range(3), size)]
    turns = range(4) if "rotate90" in allowed and volume_shape[1] == volume_shape[2] else range(1)
    views = [View(flips, k) for flips in flip_sets for k in turns]
    return sorted(views, key=lambda v: (len(v.flips) + (v.turns > 0), v.turns, v.flips))


def choose_views(run: RunRecord, volume_shape: tuple[int, ...], count: int) -> list[View]:
    views = tta_views(run, volume_shape)
    if count < 1:
        raise LabError(f"--tta is {count}; give the number of views, 1 or more.")
    if count > len(views):
        if len(views) == 1:
            raise LabError(
                f"Run {run.id} was trained without flip or rotate90 augmentation, so test-time augmentation has no "
                "views the model has seen; leave out --tta (or train with augmentation)."
            )
        raise LabError(f"Run {run.id}'s augmentation allows {len(views)} test-time views; give --tta {len(views)} "
                          "or fewer.")
    return views[:count]
