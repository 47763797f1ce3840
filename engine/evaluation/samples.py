"""The volumes and groups behind a run's sample ids (for the Inspect page's sample viewer).

A run stores sample ids (row indices into its dataset), not volumes; these
helpers reload the dataset from its disk cache (a memory map) by the run's
config. No TensorFlow.
"""

from __future__ import annotations

import numpy as np

from engine import datasets
from engine.config import RunConfig
from engine.evaluation.report import EvaluationError


def run_dataset(config: RunConfig) -> datasets.Dataset:
    """The dataset a run was trained on (read from the cache, generated again if the cache was cleared)."""
    return datasets.load_dataset(config.data.dataset, config.data.options)


def sample_volume(dataset: datasets.Dataset, sample_id: int) -> np.ndarray:
    """One sample's volume as a (D, H, W) float32 array (the first channel)."""
    if not 0 <= int(sample_id) < len(dataset.x):
        raise EvaluationError(
            f"Sample {sample_id} is not in dataset {dataset.name!r} ({len(dataset.x)} samples); "
            "the dataset changed since the run was trained."
        )
    volume = np.asarray(dataset.x[int(sample_id)], dtype=np.float32)
    return volume[..., 0] if volume.ndim == 4 else volume
