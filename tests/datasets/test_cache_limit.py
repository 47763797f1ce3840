"""The dataset cache has a size limit (CONV3D_LAB_CACHE_MB) and evicts the least recently used entries."""

from __future__ import annotations

import os
import time

import numpy as np

from engine import datasets, paths
from engine.datasets import cache


def _entry(name: str, megabytes: float) -> None:
    x = np.zeros((int(megabytes * 1024 * 1024 / 4 / 64), 4, 4, 4, 1), dtype=np.float32)
    cache.save("test", name, x, {"note": name}, y=np.zeros(len(x), dtype=np.int32))


def _set_last_used(name: str, when: float) -> None:
    for path in cache.entry_dir("test", name).iterdir():
        os.utime(path, (when, when))


def test_saving_beyond_the_limit_evicts_the_least_recently_used_entries(lab_home, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_CACHE_MB", "2.5")
    now = time.time()
    for index, name in enumerate(("a", "b", "c")):
        _entry(name, 0.8)
        _set_last_used(name, now - 1000 + index)
    assert cache.load("test", "a") is not None  # a is used now: b is the least recently used
    _entry("d", 0.8)  # 3.2 MB > 2.5 MB: b goes
    cached = {p.name for p in paths.data_cache_dir().iterdir()}
    assert cached == {"test-a", "test-c", "test-d"}
    assert cache.load("test", "b") is None


def test_the_entry_just_written_is_never_evicted(lab_home, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_CACHE_MB", "0.5")
    _entry("old", 0.4)
    _entry("big", 1.0)  # alone over the limit: kept, the older one goes
    assert {p.name for p in paths.data_cache_dir().iterdir()} == {"test-big"}
    assert cache.load("test", "big")["meta"] == {"note": "big"}


def test_listing_datasets_does_not_count_as_a_use(lab_home):
    datasets.load_dataset("shapes3d", {"num_samples": 24, "size": 8})
    folder = next(paths.data_cache_dir().iterdir())
    stamp = cache.last_used(folder)
    time.sleep(0.05)
    assert datasets.dataset_info("shapes3d", {"num_samples": 24, "size": 8})["cached"]
    assert cache.last_used(folder) == stamp
