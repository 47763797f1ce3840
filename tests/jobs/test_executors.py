"""The executor interface: which executor runs the queue, and the local one behind the interface."""

from __future__ import annotations

import pytest

from engine import jobs
from engine.errors import LabError
from engine.jobs import executors
from engine.jobs.executors.local import LocalExecutor
from engine.runs import RunStatus
from tests.jobs.helpers import tiny_config


def test_the_local_executor_is_the_default_and_a_bad_setting_is_a_sentence_before_anything_is_recorded(
        store, monkeypatch):
    monkeypatch.delenv(executors.EXECUTOR_ENV, raising=False)
    assert executors.selected_name() == "local" and executors.selected_cluster() is None
    assert executors.concurrency() == 1  # the jobs tests' one slot
    monkeypatch.setenv(executors.EXECUTOR_ENV, "slurm")
    with pytest.raises(LabError, match="CONV3D_LAB_EXECUTOR is 'slurm'; set it to one of local, ray"):
        jobs.launch(tiny_config())
    assert store.list_runs() == []


def test_the_local_executor_claims_on_its_slots_and_knows_a_run_without_a_process_is_gone(store, monkeypatch):
    monkeypatch.setattr(jobs.control.processes, "spawn_worker", lambda *args: (_ for _ in ()).throw(OSError("no")))
    local = LocalExecutor()
    assert local.slot_names() == jobs.slots()
    run_id = store.create_run(tiny_config())
    assert local.submit(store) == []  # claimed, but the worker could not start: failed with a sentence
    run = store.get_run(run_id)
    assert run.status == RunStatus.FAILED and "could not be started" in run.error
    assert executors.for_run(run) is None and not local.is_alive(run)
