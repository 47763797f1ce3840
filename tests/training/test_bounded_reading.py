"""Training reads volumes from disk a batch at a time: no split is ever copied into memory whole.

The memory figure itself (a 4 GB dataset trained in under 2 GB resident) is a
slow benchmark: tests/training/test_memory_bench.py and tools/bench_memory.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import datasets, paths, validation
from engine.config import RunConfig, TrainingConfig
from engine.evaluation import saliency
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import execute_run, pipeline


class CountingVolumes:
    """A dataset's volume array that records how many rows each read takes and refuses a whole copy."""

    def __init__(self, volumes: np.ndarray):
        self.volumes = volumes
        self.shape = volumes.shape
        self.dtype = volumes.dtype
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, rows) -> np.ndarray:
        out = np.asarray(self.volumes[rows])
        self.reads.append(len(out))
        return out

    @property
    def rows_read(self) -> int:
        return sum(self.reads)

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole volume array was copied into memory")


@pytest.fixture
def volumes_on_disk(tmp_path):
    x = np.random.default_rng(0).normal(size=(37, 6, 5, 4, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return x, np.load(tmp_path / "x.npy", mmap_mode="r")


def test_rows_read_from_a_memory_map_are_those_rows_in_the_order_asked(volumes_on_disk):
    x, mapped = volumes_on_disk
    rows = np.array([5, 3, 3, 36, 0])
    np.testing.assert_array_equal(pipeline.read_rows(mapped, rows), x[rows])
    # A view of the map (its file offset is the parent's) is indexed instead of read from the file.
    np.testing.assert_array_equal(pipeline.read_rows(mapped[2:], [0, 1]), x[2:4])
    np.testing.assert_array_equal(pipeline.read_rows(x, rows), x[rows])


def test_rows_of_another_dtype_come_back_as_float32(tmp_path):
    x = np.arange(3 * 8, dtype=np.float16).reshape(3, 2, 2, 2)
    np.save(tmp_path / "half.npy", x)
    rows = pipeline.read_rows(np.load(tmp_path / "half.npy", mmap_mode="r"), [2, 0])
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, x[[2, 0]].astype(np.float32))


def test_a_split_view_normalises_each_volume_it_reads(volumes_on_disk):
    x, mapped = volumes_on_disk
    split = pipeline.VolumeRows(mapped, np.array([10, 4, 20]), "zscore")
    assert split.shape == (3, 6, 5, 4, 1) and len(split) == 3
    np.testing.assert_allclose(split[[2, 0]], datasets.normalize(x[[20, 10]], "zscore"), rtol=1e-6)
    np.testing.assert_allclose(split[1], datasets.normalize(x[[4]], "zscore")[0], rtol=1e-6)
    np.testing.assert_allclose(split[:], datasets.normalize(x[[10, 4, 20]], "zscore"), rtol=1e-6)


@pytest.mark.parametrize("augment", [False, True])
def test_the_pipeline_reads_a_few_batches_ahead_of_the_model_not_the_split(augment):
    volumes = CountingVolumes(np.random.default_rng(1).normal(size=(200, 4, 4, 4, 1)).astype(np.float32))
    batch_size = 4
    dataset = pipeline.make_dataset(
        pipeline.VolumeRows(volumes, np.arange(200)), np.zeros(200, np.float32), batch_size,
        training=True, seed=1, training_config=TrainingConfig(augment=augment),
    )
    # Each stage (read, augment, prefetch) holds at most READ_AHEAD_BATCHES batches.
    bound = batch_size * 3 * pipeline.READ_AHEAD_BATCHES
    consumed, ahead = 0, []
    for _volumes, labels in dataset:
        consumed += len(labels)
        ahead.append(volumes.rows_read - consumed)
    assert consumed == 200 and volumes.rows_read == 200
    assert max(volumes.reads) <= batch_size
    assert max(ahead) <= bound, f"read {max(ahead)} rows ahead of the model; at most {bound} expected"


def test_a_run_reads_its_volumes_a_batch_at_a_time(lab_home, monkeypatch):
    # The bounded-memory path: splits too big for the in-memory cache (here: the cache turned off).
    monkeypatch.setenv(pipeline.INPUT_CACHE_FRACTION_ENV, "0")
    counted: list[CountingVolumes] = []
    load_dataset = datasets.load_dataset

    def counting_load_dataset(name, options=None):
        dataset = load_dataset(name, options)
        counted.append(CountingVolumes(dataset.x))
        return dataclasses.replace(dataset, x=counted[-1])

    monkeypatch.setattr(datasets, "load_dataset", counting_load_dataset)
    batch_size = 4
    config = {
        "data": {"dataset": "shapes3d", "options": {"num_samples": 96, "size": 10}, "normalization": "zscore"},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
        "training": {"epochs": 2, "batch_size": batch_size, "max_saliency_samples": 20, "class_weight": "balanced"},
    }
    store = open_store()
    run_id = store.create_run(validation.validate(RunConfig.from_dict(config)), status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)

    assert summary["status"] == RunStatus.FINISHED, store.get_run(run_id).error
    sizes = store.get_run(run_id).split_sizes
    assert saliency.load_saliency(paths.run_dir(run_id))["maps"].shape[0] == min(20, sizes["test"])
    volumes = counted[0]
    # Every epoch reads its batches again (train, then val for fit and for the recorder's predictions).
    assert volumes.rows_read >= 2 * (sizes["train"] + 2 * sizes["val"]) + sizes["test"]
    # Never more than a batch (or a Grad-CAM batch) in one read; the old code read each split whole.
    assert max(volumes.reads) <= max(batch_size, saliency.BATCH_SIZE) < sizes["train"]
