"""The worker: ``python -m engine worker RUN_ID`` executes one claimed run in its own process.

``schedule`` starts it detached (its own session, output appended to
``runs/<id>/worker.log``). It records its pid, host and a heartbeat, trains
through ``engine.training.execute_run`` (which records the outcome), and then
schedules the queue, so the next queued run starts by itself. SIGTERM (the
second step of a stop) ends the run ``stopped``.

Test hooks, read from the environment by the worker only:

- ``CONV3D_LAB_TEST_BATCH_DELAY_S=SECONDS`` sleeps that long after every
  training batch: a run slow enough to stop or kill at a chosen moment.
- ``CONV3D_LAB_TEST_FAIL_AT_EPOCH=N`` raises an exception in the first batch
  of epoch N: a run that fails in the middle of training.
- ``CONV3D_LAB_FAKE_WORKER_S=SECONDS`` trains nothing: the worker holds the run
  for that long (still honouring the stop flag) and marks it finished. No
  TensorFlow is imported, so tests of the queue's concurrency can run many
  workers on a small machine; the claiming and scheduling are the real ones.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import time
import traceback

from engine.jobs import processes
from engine.jobs.control import schedule
from engine.jobs.standby import command_marker, ensure_standby
from engine.store.heartbeat import Heartbeat
from engine.store import FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED, Store, open_store

log = logging.getLogger(__name__)

BATCH_DELAY_ENV = "CONV3D_LAB_TEST_BATCH_DELAY_S"
FAKE_WORKER_ENV = "CONV3D_LAB_FAKE_WORKER_S"
FAIL_AT_EPOCH_ENV = "CONV3D_LAB_TEST_FAIL_AT_EPOCH"


def run_worker(run_id: int) -> int:
    """Execute claimed run ``run_id`` here; returns the process exit code (0 when it finished)."""
    store = open_store()
    run = store.get_run(run_id)
    if run["status"] != RUNNING:
        print(
            f"Run {run_id} is {run['status']}; a worker only executes a run that the queue has claimed "
            "(status running). Use `python -m engine resume` or `launch` instead.",
            file=sys.stderr,
        )
        return 2
    other = run.get("pid")
    if (
        other
        and other != os.getpid()
        and run.get("host") == socket.gethostname()
        and (
            processes.pid_alive(other, expect=("worker", str(run_id)))
            or processes.pid_alive(other, expect=command_marker(str(run.get("slot"))))
        )
    ):
        print(f"Run {run_id} already has a worker (pid {other}); not starting a second one.", file=sys.stderr)
        return 2

    return work_claimed(store, run_id)


def work_claimed(store: Store, run_id: int, *, via: str | None = None, unblock_sigterm: bool = False) -> int:
    """Be the worker of claimed run ``run_id`` in this process (a fresh worker, or a warm standby
    that has just claimed it, with SIGTERM blocked: ``unblock_sigterm``); returns the exit code."""
    store.update_run(run_id, pid=os.getpid(), host=socket.gethostname(), heartbeat_at=time.time())
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    exit_code = 1
    try:
        if unblock_sigterm:  # a SIGTERM that came during the claim is raised here, inside the try
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if via:
            print(f"run {run_id}: worker is the {via} (pid {os.getpid()})", flush=True)
        with Heartbeat(store, run_id):
            status = _execute(store, run_id)
        exit_code = 0 if status == FINISHED else 1
    except KeyboardInterrupt:
        # SIGTERM or Ctrl-C. execute_run has recorded it if training had begun;
        # otherwise (still importing TensorFlow, say) it is recorded here.
        store.transition(
            run_id,
            STOPPED,
            from_statuses=[RUNNING, INTERRUPTED],
            finished_at=time.time(),
            error="The worker was terminated before the run finished; the epochs recorded so far are kept.",
        )
        exit_code = 128 + signal.SIGTERM
    except Exception as exc:  # a failure outside execute_run, e.g. TensorFlow cannot be imported
        store.transition(
            run_id,
            FAILED,
            from_statuses=[RUNNING, INTERRUPTED],
            finished_at=time.time(),
            error=f"The worker failed before training: {type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        store.log_event(run_id, f"worker failed: {type(exc).__name__}: {exc}", "error")
        exit_code = 1
    finally:
        # The run has its outcome; a late SIGTERM must not cut the hand-over to the next run short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            started = schedule(store)
            if started:
                print(f"started the next queued run(s): {', '.join(map(str, started))}", flush=True)
        except Exception:
            log.exception("scheduling the queue after run %s failed", run_id)
        try:
            standby_pid = ensure_standby(store)  # so the next launch starts warm too
            if standby_pid:
                print(f"warm standby for the next launch: pid {standby_pid}", flush=True)
        except Exception:
            log.exception("starting a warm standby after run %s failed", run_id)
    return exit_code


def _execute(store: Store, run_id: int) -> str:
    """Train the run (or hold it, under the fake-worker test hook); returns its final status."""
    fake_seconds = os.environ.get(FAKE_WORKER_ENV)
    if fake_seconds:
        return _hold_run(store, run_id, float(fake_seconds))
    _install_test_hooks()
    from engine.training import execute_run  # imports TensorFlow: only here, in the worker

    summary = execute_run(store, run_id, verbose=2)
    print(json.dumps(summary), flush=True)
    return summary["status"]


def _raise_keyboard_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------- test hooks
def _install_test_hooks() -> None:
    """Wrap the recording callback's batch hook as the test-hook variables ask (nothing when unset)."""
    delay_text, fail_text = os.environ.get(BATCH_DELAY_ENV), os.environ.get(FAIL_AT_EPOCH_ENV)
    if not delay_text and not fail_text:
        return
    delay_s = float(delay_text or 0)
    fail_epoch = int(fail_text) if fail_text else None
    from engine.training import callbacks

    original = callbacks.StoreRecorder.on_train_batch_end

    def hooked(self, batch, logs=None):
        if fail_epoch is not None and self._epoch >= fail_epoch:
            raise RuntimeError(f"injected failure in epoch {self._epoch} (test hook {FAIL_AT_EPOCH_ENV})")
        time.sleep(delay_s)
        return original(self, batch, logs)

    callbacks.StoreRecorder.on_train_batch_end = hooked
    print(f"test hooks: {BATCH_DELAY_ENV}={delay_text}, {FAIL_AT_EPOCH_ENV}={fail_text}", flush=True)


def _hold_run(store: Store, run_id: int, seconds: float) -> str:
    store.log_event(run_id, f"test hook {FAKE_WORKER_ENV}: holding the run for {seconds:g} s (pid {os.getpid()})")
    status = FINISHED
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if store.stop_requested(run_id):
            status = STOPPED
            break
        time.sleep(0.05)
    fields = {"finished_at": time.time()}
    if status == FINISHED:
        fields["epochs_done"] = store.get_run(run_id)["epochs_total"]
    store.transition(run_id, status, from_statuses=[RUNNING, INTERRUPTED], **fields)
    store.log_event(run_id, f"test hook {FAKE_WORKER_ENV}: run {status}")
    return status


__all__ = ["run_worker", "work_claimed", "BATCH_DELAY_ENV", "FAIL_AT_EPOCH_ENV", "FAKE_WORKER_ENV"]
