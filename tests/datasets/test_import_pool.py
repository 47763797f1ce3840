"""A DICOM import reads its series in a process pool, with the same outcome as reading them in one process."""

from __future__ import annotations

import concurrent.futures
import sys
import types

import numpy as np
import pytest

from engine import datasets
from engine.bench import import_bench
from engine.datasets import importing
from engine.errors import ConfigError


def _import(source, name: str, workers: int, monkeypatch) -> importing.ImportResult:
    monkeypatch.setenv(importing.IMPORT_WORKERS_ENV, str(workers))
    return importing.import_dataset(source, name, importing.ImportOptions(format="dicom", labels_csv="none"))


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_pooled_and_serial_dicom_imports_give_the_same_dataset(lab_home, tmp_path, monkeypatch, start_method):
    monkeypatch.setattr(importing, "pool_start_method", lambda: start_method)
    # A spawned child re-runs this process's __main__ file; after an AppTest in the same pytest process that is
    # a dashboard page (a real `python -m engine` or the dashboard's fork has no such main), so give it none.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    source = tmp_path / "series"
    import_bench.write_series(source, series=6, slices=3, size=8)
    # One series whose pixel data is cut short: skipped with the same sentence either way.
    broken = sorted((source / "normal" / "patient-002").glob("*.dcm"))[1]
    broken.write_bytes(broken.read_bytes()[:-40])

    submitted: list[int] = []
    submit = concurrent.futures.ProcessPoolExecutor.submit

    def counting_submit(self, *args, **kwargs):
        submitted.append(1)
        return submit(self, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "submit", counting_submit)
    pooled = _import(source, "pooled", 2, monkeypatch)
    assert len(submitted) == 6  # every series went to the pool
    serial = _import(source, "serial", 1, monkeypatch)
    assert len(submitted) == 6  # one worker: read in this process

    assert pooled.samples == serial.samples == 5
    assert list(pooled.skipped) == list(serial.skipped) == ["normal/patient-002"]
    assert pooled.skipped == serial.skipped
    a, b = datasets.load_dataset("pooled"), datasets.load_dataset("serial")
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    np.testing.assert_array_equal(np.asarray(a.y), np.asarray(b.y))
    assert list(a.sample_ids) == list(b.sample_ids)


def test_the_pool_forks_only_a_process_with_one_thread_and_no_tensorflow(monkeypatch):
    import sys
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert importing.pool_start_method() == "fork"
    monkeypatch.setattr(threading, "active_count", lambda: 3)  # a dashboard's server threads
    assert importing.pool_start_method() == "spawn"


def test_import_workers_follow_the_cores_and_the_environment(monkeypatch):
    monkeypatch.delenv(importing.IMPORT_WORKERS_ENV, raising=False)
    monkeypatch.setattr(importing.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert importing.import_workers(10) == 4
    assert importing.import_workers(3) == 3  # at most one per series
    assert importing.import_workers(10, importing.POOL_MIN_VOXELS) == 4
    assert importing.import_workers(10, importing.POOL_MIN_VOXELS - 1) == 1  # too small to pay the start-up
    monkeypatch.setenv(importing.IMPORT_WORKERS_ENV, "1")
    assert importing.import_workers(10) == 1
    monkeypatch.setenv(importing.IMPORT_WORKERS_ENV, "2")
    assert importing.import_workers(10, 100) == 2  # as the environment says, whatever the size
    monkeypatch.setenv(importing.IMPORT_WORKERS_ENV, "many")
    with pytest.raises(ConfigError, match="CONV3D_LAB_IMPORT_WORKERS='many' is not a whole number"):
        importing.import_workers(10)


def test_bench_import_compares_the_engine_with_pydicom_alone(lab_home):
    report = import_bench.run_import_bench(series=3, slices=3, size=8, repeats=1)
    assert report["bench"] == "import" and report["setup"]["files"] == 9
    assert set(report["arms"]) == {"pydicom", "engine", "engine 1 worker"}
    for arm in report["arms"].values():
        assert arm["median_s"] > 0 and arm["files_per_s"] > 0 and len(arm["seconds"]) == 1
    assert report["arms"]["pydicom"]["speed_vs_pydicom"] == 1.0
    assert report["arms"]["engine 1 worker"]["workers"] == 1
