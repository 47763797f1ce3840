"""A tiny imported DICOM dataset and a run trained on it, for the predict tests and the Predict page's browser test.

Two classes ("lesion": a bright block in noise, "normal": noise), ten 10x10x6
MR series each (2 mm slices, 1 mm pixels), imported resampled to 8^3 with
per-volume min-max; the run (tutorial3d, same padding, 2 epochs) trains with
flip augmentation and z-score normalisation, so predicting exercises both
normalisations and test-time flips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import datasets
from engine.config import RunConfig
from engine.datasets.importing import ImportOptions
from engine.runs import RunStatus
from tests.datasets.scans import write_dicom_series

SERIES_SHAPE = (6, 10, 10)  # slices, rows, columns
EDGE = 8
PER_CLASS = 10


def _series(rng: np.random.Generator, lesion: bool) -> np.ndarray:
    volume = rng.normal(100, 10, SERIES_SHAPE)
    if lesion:
        k, i, j = rng.integers(1, 3), rng.integers(2, 6), rng.integers(2, 6)
        volume[k:k + 3, i:i + 4, j:j + 4] += 400
    return np.round(volume).astype(np.int16)


def _train(store, config: RunConfig, group: str | None = None) -> int:
    from engine.training import execute_run

    run_id = store.create_run(config, status=RunStatus.RUNNING, group=group)
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FINISHED, summary
    return run_id


def dicom_run(home: Path, store, epochs: int = 2) -> tuple[Path, int]:
    """Write the series under ``home/scans``, import them as "scans", train one run; (source folder, run id).

    The lab's workspace is whatever CONV3D_LAB_HOME / CONV3D_LAB_DATA say when called.
    """
    source = home / "scans"
    rng = np.random.default_rng(0)
    for label in ("lesion", "normal"):
        for patient in range(PER_CLASS):
            write_dicom_series(source / label / f"{label}{patient:02d}", _series(rng, label == "lesion"),
                               patient=f"{label}{patient}", positions=[2.0 * k for k in range(SERIES_SHAPE[0])])
    datasets.import_dataset(source, "scans", ImportOptions(shape=(EDGE, EDGE, EDGE), normalization="minmax"))
    config = RunConfig()
    config.data.dataset = "scans"
    config.data.val_fraction = config.data.test_fraction = 0.25
    config.data.normalization = "zscore"
    config.model.architecture, config.model.padding = "tutorial3d", "same"
    config.training.epochs, config.training.batch_size = epochs, 8
    config.training.augment, config.training.augmentations = True, ["flip"]
    return source, _train(store, config)
