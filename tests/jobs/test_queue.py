"""The queue: runs wait for a free slot, start by themselves, and are claimed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import jobs
from engine.errors import ConfigError, RunStateError
from engine.machine.devices import SLOTS_ENV
from engine.runs import RunStatus
from engine.store import open_store
from tests.jobs.helpers import lab_processes, tiny_config, wait_ended, wait_for
from tests import fake_worker
from tests.store.postgres import on_both_stores

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_second_run_waits_for_the_one_slot_and_starts_by_itself(store):
    first = jobs.launch(tiny_config(epochs=2))
    second = jobs.launch(tiny_config(epochs=2).to_dict())  # a plain dict is accepted too
    assert store.get_run(first).status == RunStatus.RUNNING
    assert store.get_run(second).status == RunStatus.QUEUED

    first_run = wait_ended(store, first)
    second_run = wait_ended(store, second)
    assert (first_run.status, second_run.status) == (RunStatus.FINISHED, RunStatus.FINISHED)
    # Nobody called schedule() after the launches: the first worker started the second.
    assert second_run.started_at >= first_run.finished_at
    assert second_run.epochs_done == 2 and len(store.epoch_history(second)) == 2
    assert "worker for run" in jobs.log_tail(first) and "Epoch 2/2" in jobs.log_tail(first, lines=200)
    assert jobs.log_tail(999) == ""


def test_an_invalid_config_is_refused_before_anything_is_recorded(store):
    with pytest.raises(ConfigError, match="training.epochs"):
        jobs.launch({"data": {"dataset": "shapes3d"}, "training": {"epochs": 0}})
    assert store.list_runs() == []


@on_both_stores
def test_stopping_a_queued_run_removes_it_from_the_queue(store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "2")
    holder = jobs.launch(tiny_config())
    waiting = jobs.launch(tiny_config())
    assert jobs.stop(waiting) == RunStatus.STOPPED
    assert wait_ended(store, holder, 60).status == RunStatus.FINISHED
    run = store.get_run(waiting)
    assert run.status == RunStatus.STOPPED and run.started_at is None

    with pytest.raises(RunStateError, match=f"Run {holder} is finished; only an interrupted or stopped run"):
        jobs.resume(holder)
    assert jobs.resume(waiting) == waiting  # a stopped run can still be resumed later
    assert wait_ended(store, waiting, 60).status == RunStatus.FINISHED


@on_both_stores
def test_ten_launches_at_once_from_separate_processes(jobs_lab, store_url, tmp_path, monkeypatch):
    """No "database is locked", no run claimed twice, never more running runs than slots.

    The database does not exist yet: the launchers also race to create it.
    """
    monkeypatch.setenv(SLOTS_ENV, "2")
    # Workers hold their run for a second instead of training: the claiming and
    # scheduling are the real ones, without ten TensorFlow imports on two cores.
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "1")
    config_path = tmp_path / "config.json"
    config_path.write_text(tiny_config().to_json())

    # One process imports the engine once and forks ten launchers released together (see launch_at_once.py).
    launched = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("launch_at_once.py")), str(config_path), "10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launched.returncode == 0, launched.stderr
    assert "database is locked" not in launched.stderr
    launches = [json.loads(line) for line in launched.stdout.splitlines()]
    assert len({launch["pid"] for launch in launches}) == 10  # ten separate processes
    run_ids = sorted(launch["run_id"] for launch in launches)
    assert run_ids == list(range(1, 11))

    store = open_store()
    runs = [wait_ended(store, run_id, 120) for run_id in run_ids]
    wait_for(lambda: not lab_processes(jobs_lab), 30, "the workers to exit")

    assert [run.status for run in runs] == [RunStatus.FINISHED] * 10
    for run in runs:
        messages = [event["message"] for event in store.get_events(run.id)]
        assert sum("holding the run" in message for message in messages) == 1, messages  # trained once
        assert sum(message.startswith("started on slot") for message in messages) == 1, messages
        log = jobs.log_tail(run.id, lines=1000)
        assert "database is locked" not in log and "Traceback" not in log, log
    # Never more running runs than slots, judged from the start and end times the store recorded (no
    # sampling that a short overlap could slip through): at most two at once, never two on one slot.
    edges = sorted([(run.started_at, 1) for run in runs] + [(run.finished_at, -1) for run in runs])
    running_at_once = max(sum(change for _, change in edges[: index + 1]) for index in range(len(edges)))
    assert running_at_once <= 2
    for slot in {run.slot for run in runs}:
        on_slot = sorted((run.started_at, run.finished_at) for run in runs if run.slot == slot)
        assert all(earlier[1] <= later[0] for earlier, later in zip(on_slot, on_slot[1:])), on_slot
