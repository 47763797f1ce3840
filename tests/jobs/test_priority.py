"""Background workers train at a lower CPU priority than the dashboard (``CONV3D_LAB_WORKER_NICE``)."""

from __future__ import annotations

import os

import pytest

from engine import jobs
from engine.errors import LabError
from engine.jobs import processes
from engine.runs import RunStatus
from tests.jobs.helpers import tiny_config, wait_ended, wait_for
from tests import fake_worker


def _nice(pid: int) -> int:
    """Field 19 of /proc/PID/stat: the process's nice value."""
    return int(processes.proc_stat(pid)[16])


@pytest.mark.parametrize(("setting", "target"), [(None, processes.DEFAULT_WORKER_NICE), ("3", 3)])
def test_a_worker_runs_at_the_workers_nice_value(store, monkeypatch, setting, target):
    if setting is None:
        monkeypatch.delenv(processes.WORKER_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(processes.WORKER_NICE_ENV, setting)
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "3")
    run_id = jobs.launch(tiny_config())
    pid = wait_for(lambda: store.get_run(run_id).pid, 30, "the worker to record its pid")
    assert wait_for(lambda: _nice(pid) == max(os.nice(0), target), 10, "the worker's nice value")
    assert wait_ended(store, run_id, 60).status == RunStatus.FINISHED


def test_a_worker_started_by_a_worker_is_not_lowered_twice(store, monkeypatch):
    """The next queued run's worker is spawned by the worker that ends (already at nice 10)."""
    monkeypatch.delenv(processes.WORKER_NICE_ENV, raising=False)
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "1")
    first, second = jobs.launch(tiny_config()), jobs.launch(tiny_config())
    pid = wait_for(lambda: store.get_run(second).pid, 60, "the second worker to record its pid")
    assert store.get_run(first).status.is_ended  # so the first worker started the second
    assert _nice(pid) == max(os.nice(0), processes.DEFAULT_WORKER_NICE)
    assert wait_ended(store, second, 60).status == RunStatus.FINISHED


def test_a_bad_setting_is_a_sentence_at_launch_and_nothing_is_recorded(store, monkeypatch):
    monkeypatch.setenv(processes.WORKER_NICE_ENV, "high")
    with pytest.raises(LabError, match="CONV3D_LAB_WORKER_NICE is 'high'; set it to a whole number from 0"):
        jobs.launch(tiny_config())
    assert store.list_runs() == []
