"""A run is trained by one process only: a suspended trainer is not replaced while it lives, a trainer
whose run was taken over stops writing, and the store refuses a second row for an epoch."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import jobs
from engine.errors import RunStateError
from engine.runs import RunStatus
from tests import fake_worker
from tests.jobs.helpers import WORKER_TIMEOUT_S, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN = [
    "train", "--dataset", "shapes3d", "--option", "num_samples=48", "--arch", "tutorial3d", "--width", "0.25",
    "--batch-size", "8", "--json",
]


def _foreground(epochs: int, env: dict) -> subprocess.Popen:
    """``python -m engine train`` in the foreground of its own process (as a person starts it with ``&``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *TRAIN, "--epochs", str(epochs)], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def slow_env(monkeypatch):
    """A short stale-heartbeat limit (the test takes seconds) and slow batches (6 per epoch, ~1 s)."""
    monkeypatch.setenv(jobs.control.STALE_HEARTBEAT_ENV, "2")
    monkeypatch.setenv(fake_worker.BATCH_DELAY_ENV, "0.15")
    return dict(os.environ)


def _suspend_between_writes(process: subprocess.Popen, database: Path) -> None:
    """SIGSTOP ``process`` at a moment it holds no SQLite write lock (it writes a few rows a second; a
    process suspended inside a write transaction would block every other writer until it continues)."""
    for _ in range(50):
        os.kill(process.pid, signal.SIGSTOP)
        probe = sqlite3.connect(database, timeout=0.5, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.2)
        finally:
            probe.close()
    raise AssertionError("the trainer always held the database's write lock")


def _epoch_rows(store, run_id: int) -> list[int]:
    return sorted(row["epoch"] for row in store.get_metrics(run_id, kind="epoch") if row["name"] == "loss")


def test_a_suspended_foreground_run_is_reported_silent_not_trained_twice(jobs_lab, store, slow_env):
    process = _foreground(4, slow_env)
    try:
        run_id = wait_for(lambda: (runs := store.list_runs()) and runs[0].epochs_done >= 1 and runs[0].id,
                          WORKER_TIMEOUT_S, "the first epoch")
        run = store.get_run(run_id)
        assert run.pid == process.pid and run.host and run.slot == "foreground"
        _suspend_between_writes(process, jobs_lab / "lab.db")
        time.sleep(3.5)  # longer than the 2 s stale-heartbeat limit
        assert jobs.reconcile(store) == []  # its process lives: never given to another
        assert store.get_run(run_id).status == RunStatus.RUNNING
        silent = {run.id: age for run, age in jobs.silent_runs(store)}
        assert run_id in silent and silent[run_id] > 2
        listed = subprocess.run([sys.executable, "-m", "engine", "runs"], cwd=REPO_ROOT, env=slow_env,
                                capture_output=True, text=True, timeout=120)
        assert "no heartbeat for" in listed.stdout, listed.stdout
        with pytest.raises(RunStateError, match="still running"):
            jobs.resume(run_id, store=store)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    out, err = process.communicate(timeout=WORKER_TIMEOUT_S)
    assert process.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["status"] == "finished"
    assert _epoch_rows(store, run_id) == [1, 2, 3, 4]  # each epoch once
    messages = [event["message"] for event in store.get_events(run_id)]
    assert messages.count("run finished") == 1, messages


def test_a_trainer_whose_run_was_taken_over_stops_writing(jobs_lab, store, slow_env):
    process = _foreground(8, slow_env)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_id = wait_for(lambda: (runs := store.list_runs()) and runs[0].epochs_done >= 1 and runs[0].id,
                          WORKER_TIMEOUT_S, "the first epoch")
        _suspend_between_writes(process, jobs_lab / "lab.db")
        # What the old reconcile + resume did: the run was declared gone and given to another process.
        assert store.transition(run_id, RunStatus.INTERRUPTED, from_statuses=[RunStatus.RUNNING])
        assert store.transition(run_id, RunStatus.RUNNING, from_statuses=[RunStatus.INTERRUPTED], pid=holder.pid)
        taken_over_with = _epoch_rows(store, run_id)
        os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=WORKER_TIMEOUT_S)
        assert process.returncode == 1 and "taken over by another process" in err, err[-2000:]
        assert _epoch_rows(store, run_id) == taken_over_with  # nothing appended to the other's history
        run = store.get_run(run_id)
        assert run.status == RunStatus.RUNNING and run.pid == holder.pid and not run.test_metrics
        messages = [event["message"] for event in store.get_events(run_id)]
        assert any("stopped without recording more" in message for message in messages), messages
        assert "run finished" not in messages
    finally:
        holder.kill()
        holder.wait()
        if process.poll() is None:
            process.kill()
            process.wait()
