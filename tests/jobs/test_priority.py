"""Background workers train at a lower CPU priority than the dashboard (``CONV3D_LAB_WORKER_NICE``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import jobs
from engine.errors import LabError
from engine.jobs import processes, worker
from engine.runs import RunStatus
from tests.jobs.helpers import tiny_config, wait_ended, wait_for


def _nice(pid: int) -> int:
    """Field 19 of /proc/PID/stat: the process's nice value."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize(("setting", "increment"), [(None, processes.DEFAULT_WORKER_NICE), ("3", 3)])
def test_a_worker_runs_nicer_than_the_process_that_launched_it(store, monkeypatch, setting, increment):
    if setting is None:
        monkeypatch.delenv(processes.WORKER_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(processes.WORKER_NICE_ENV, setting)
    monkeypatch.setenv(worker.FAKE_WORKER_ENV, "3")
    run_id = jobs.launch(tiny_config())
    pid = wait_for(lambda: store.get_run(run_id).pid, 30, "the worker to record its pid")
    mine = os.nice(0)
    assert wait_for(lambda: _nice(pid) == min(19, mine + increment), 10, "the worker's nice value")
    assert wait_ended(store, run_id, 60).status == RunStatus.FINISHED


def test_a_bad_setting_is_a_sentence_at_launch_and_nothing_is_recorded(store, monkeypatch):
    monkeypatch.setenv(processes.WORKER_NICE_ENV, "high")
    with pytest.raises(LabError, match="CONV3D_LAB_WORKER_NICE is 'high'; set it to a whole number from 0"):
        jobs.launch(tiny_config())
    assert store.list_runs() == []
