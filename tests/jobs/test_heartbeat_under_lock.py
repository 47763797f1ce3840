"""A worker whose heartbeat write waits for another process's SQLite write lock is not "silent".

The worker's heartbeat file (touched by a thread of its own, engine/store/heartbeat.py) keeps
speaking while its store write waits; liveness takes the newer of the two. A suspended worker
stops both, and is still reported (tests/jobs/test_ownership.py).
"""

from __future__ import annotations

import subprocess
import sys
import time

from engine import jobs
from engine.jobs import control
from engine.runs import RunStatus
from engine.store import open_store
from engine.store.heartbeat import HEARTBEAT_INTERVAL_S, file_beat_time
from tests.jobs.helpers import tiny_config, wait_ended, wait_for
from tests import fake_worker

STALE_S = 8.0
LOCK_S = 16.0

_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def test_a_heartbeat_waiting_on_a_write_lock_is_not_reported_silent(jobs_lab, monkeypatch):
    monkeypatch.setenv(control.STALE_HEARTBEAT_ENV, str(STALE_S))
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "60")
    store = open_store()
    run_id = jobs.launch(tiny_config(epochs=1))
    wait_for(lambda: (run := store.get_run(run_id)).status == RunStatus.RUNNING and run.pid
             and file_beat_time(run_id), 60, "the worker to hold the run")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(jobs_lab / "lab.db"), str(LOCK_S)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        locked_at = time.time()
        time.sleep(STALE_S + HEARTBEAT_INTERVAL_S)  # the store's heartbeat is now older than the limit
        run = store.get_run(run_id)  # WAL: reads go on while the writer waits
        assert run.heartbeat_age() > STALE_S, "the store's heartbeat should have been held up by the lock"
        assert time.time() - locked_at < LOCK_S
        assert jobs.silent_runs(store) == []
        assert jobs.heartbeat_age(run) <= HEARTBEAT_INTERVAL_S + 1
        assert control._why_gone(run, time.time()) is None
    finally:
        holder.wait(timeout=60)
        jobs.stop(run_id, store=store, wait=True, grace_s=10)
    assert wait_ended(store, run_id, 60).status == RunStatus.STOPPED
