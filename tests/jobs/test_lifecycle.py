"""A run's life outside the queue: stop, crash and reconcile, resume, failure."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine import jobs, paths
from engine.weights import checkpoints
from engine.jobs import processes
from engine.runs import RunStatus
from tests import fake_worker
from tests.jobs.helpers import WORKER_TIMEOUT_S, tiny_config, wait_ended, wait_for
from tests.store.postgres import on_both_stores

REPO_ROOT = Path(__file__).resolve().parents[2]
# Per-batch sleep of a "slow" run (4 batches per epoch, so about 1 s and 2 s per epoch):
# slow enough to act on mid-run even when the machine is busy.
SLOW_BATCH_S = "0.25"
SLOWER_BATCH_S = "0.5"


def epochs_of(store, run_id: int) -> list[int]:
    return [row["epoch"] for row in store.epoch_history(run_id)]


def test_stop_ends_a_running_run_cleanly_and_keeps_its_epochs(store, monkeypatch):
    monkeypatch.setenv(fake_worker.BATCH_DELAY_ENV, SLOW_BATCH_S)
    run_id = jobs.launch(tiny_config(epochs=40))
    wait_for(lambda: store.get_run(run_id).epochs_done >= 1, WORKER_TIMEOUT_S, "the first epoch")

    asked = time.monotonic()
    assert jobs.stop(run_id) in (RunStatus.RUNNING, RunStatus.STOPPED)  # returns at once; the stop completes in the background
    assert time.monotonic() - asked < 5
    run = wait_for(lambda: (run := store.get_run(run_id)).status == RunStatus.STOPPED and run, 15, "the run to stop")
    assert run.error is None  # ended by the flag, not by a signal
    done = run.epochs_done
    assert 1 <= done < 40
    assert epochs_of(store, run_id) == list(range(1, done + 1))
    assert (paths.run_dir(run_id) / "last.keras").exists()
    assert any(event["message"] == "run stopped" for event in store.get_events(run_id))


@on_both_stores
def test_sigterm_after_the_grace_period_ends_the_run_stopped(store, monkeypatch):
    # The fake worker never looks at the stop flag here: escalate at once, as if the grace had passed.
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "60")
    run_id = jobs.launch(tiny_config())
    wait_for(
        lambda: any("holding the run" in event["message"] for event in store.get_events(run_id)), 30, "the worker"
    )
    pid = store.get_run(run_id).pid
    assert jobs.escalate_stop(store, run_id, grace_s=0) == RunStatus.STOPPED
    run = store.get_run(run_id)
    assert "terminated" in run.error
    wait_for(lambda: not processes.pid_alive(pid), 10, f"process {pid} to exit")


def test_killed_worker_is_interrupted_by_reconcile_and_resume_continues_the_history(store, monkeypatch):
    monkeypatch.setenv(fake_worker.BATCH_DELAY_ENV, SLOWER_BATCH_S)
    run_id = jobs.launch(tiny_config(epochs=4))
    wait_for(lambda: store.get_run(run_id).epochs_done >= 2, WORKER_TIMEOUT_S, "two epochs")
    run = store.get_run(run_id)
    assert run.status == RunStatus.RUNNING, "the run ended before the test could kill it"
    pid = run.pid
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not processes.pid_alive(pid), 10, f"process {pid} to exit")

    assert jobs.reconcile(store) == [run_id]
    run = store.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert f"pid {pid}" in run.error and "noticed" in run.error
    assert jobs.reconcile(store) == []  # nothing else to notice
    # last.keras is written after the first epoch and then by elapsed time: the resume continues after the
    # epoch it holds (named inside the file), and the epochs recorded after it are trained again.
    done = checkpoints.saved_epoch(paths.run_dir(run_id) / checkpoints.LAST)
    assert done is not None and 1 <= done <= run.epochs_done
    assert f"resume continues after epoch {done}." in run.error

    monkeypatch.delenv(fake_worker.BATCH_DELAY_ENV)
    assert jobs.resume(run_id, store=store) == run_id
    run = wait_ended(store, run_id)
    assert run.status == RunStatus.FINISHED, run.error
    assert epochs_of(store, run_id) == [1, 2, 3, 4]
    rows = [(row["epoch"], row["name"]) for row in store.get_metrics(run_id, kind="epoch")]
    assert len(rows) == len(set(rows))  # no epoch recorded twice
    messages = [event["message"] for event in store.get_events(run_id)]
    assert f"resuming after epoch {done}" in messages
    assert run.error is None and run.resume_from_epoch is None


def test_a_failing_worker_ends_failed_with_its_error_readable_through_show(store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAIL_AT_EPOCH_ENV, "2")
    run_id = jobs.launch(tiny_config(epochs=3))
    wait_ended(store, run_id)

    shown = subprocess.run(
        [sys.executable, "-m", "engine", "show", str(run_id), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run = json.loads(shown.stdout)
    assert run["status"] == "failed"
    assert run["error"] == "RuntimeError: injected failure in epoch 2 (test hook CONV3D_LAB_TEST_FAIL_AT_EPOCH)"
    assert "Traceback" in run["traceback"] and "RuntimeError" in run["traceback"]
    assert [row["epoch"] for row in run["history"]] == [1]  # what was recorded before the failure stays
    assert run["pid"] and run["heartbeat_at"]


@on_both_stores
def test_reconcile_trusts_a_live_worker_and_interrupts_a_silent_remote_one(store):
    config = tiny_config()
    # A foreground `python -m engine train` that has gone quiet (its command line is what identifies it).
    foreground = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "engine", "train"])
    alive = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(alive, pid=foreground.pid, host=socket.gethostname(), slot="foreground", heartbeat_at=0.0)
    # A live process that is not a trainer (a recycled pid) does not keep a run alive.
    recycled = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(recycled, pid=os.getpid(), host=socket.gethostname(), slot="foreground", heartbeat_at=0.0)
    remote = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(remote, pid=12345, host="another-host", slot="0", heartbeat_at=time.time() - 120)
    fresh = store.create_run(config, status=RunStatus.RUNNING)
    store.update_run(fresh, pid=12345, host="another-host", slot="1", heartbeat_at=time.time())

    try:
        assert sorted(jobs.reconcile()) == sorted([recycled, remote])
        assert "no heartbeat from its worker on another-host" in store.get_run(remote).error
        assert "has ended without recording an outcome" in store.get_run(recycled).error
        assert store.get_run(alive).status == RunStatus.RUNNING and store.get_run(fresh).status == RunStatus.RUNNING
        # Quiet but alive: reported as silent, not interrupted.
        assert alive in {run.id for run, _age in jobs.silent_runs(store)}
    finally:
        foreground.kill()
        foreground.wait()
    for run_id in (alive, fresh):
        store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.RUNNING])
