"""The worker: ``python -m engine worker RUN_ID`` executes one claimed run in its own process.

``schedule`` starts it detached (its own session, output appended to
``runs/<id>/worker.log``). It records its pid, host and a heartbeat, trains
through ``engine.training.execute_run`` (which records the outcome), and then
schedules the queue, so the next queued run starts by itself. SIGTERM (the
second step of a stop) ends the run ``stopped``.

The process's heartbeat thread lives here (one per run, from the claim to the
outcome, TensorFlow's import included); ``execute_run`` does not start another.

The one testing entry point: ``CONV3D_LAB_TEST_WORKER=MODULE`` names a module
that this process loads (``testing_module``) and that decides how the claimed run
is executed (``MODULE.execute(store, run_id, train)``: hold it without
TensorFlow, or call ``train`` with extra Keras callbacks). Only the tests set it
(tests/conftest.py names tests/fake_worker.py); nothing else here is a test hook.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from engine import errors, paths
from engine.jobs import liveness, processes
from engine.jobs.control import schedule
from engine.jobs.standby import ensure_standby
from engine.runs import RunStatus
from engine.store import RunStore, artefacts, journal, open_store
from engine.store.heartbeat import Heartbeat

log = logging.getLogger(__name__)

# The testing entry point (see the module's docstring and docs/architecture.md); never set in production.
TEST_WORKER_ENV = "CONV3D_LAB_TEST_WORKER"
# The statuses a worker may end: its own run, or one reconcile wrongly took for dead.
_ACTIVE = (RunStatus.RUNNING, RunStatus.INTERRUPTED)


def run_worker(run_id: int) -> int:
    """Execute claimed run ``run_id`` here; returns the process exit code (0 when it finished)."""
    store = open_store()
    run = store.get_run(run_id)
    if run.status != RunStatus.RUNNING:
        print(
            f"Run {run_id} is {run.status.label}; a worker only executes a run that the queue has claimed "
            "(status running). Use `python -m engine resume` or `launch` instead.",
            file=sys.stderr,
        )
        return 2
    if run.pid and run.pid != os.getpid() and liveness.on_this_host(run) and liveness.process_alive(run):
        print(f"Run {run_id} already has a worker (pid {run.pid}); not starting a second one.", file=sys.stderr)
        return 2

    processes.lower_priority()
    return work_claimed(store, run_id)


def work_claimed(store: RunStore, run_id: int, *, via: str | None = None, unblock_sigterm: bool = False) -> int:
    """Be the worker of claimed run ``run_id`` in this process (a fresh worker, or a warm standby
    that has just claimed it, with SIGTERM blocked: ``unblock_sigterm``); returns the exit code."""
    store.update_run(run_id, pid=os.getpid(), host=socket.gethostname(), heartbeat_at=time.time())
    journal.save(store, run_id)  # its folder holds its config and record from the start
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    exit_code = 1
    try:
        if unblock_sigterm:  # a SIGTERM that came during the claim is raised here, inside the try
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if via:
            print(f"run {run_id}: worker is the {via} (pid {os.getpid()})", flush=True)
        artefacts.run_folder(run_id)  # with CONV3D_LAB_ARTIFACTS set: a resumed run's checkpoints, from the root
        with Heartbeat(store, run_id):
            status = _execute(store, run_id)
        exit_code = 0 if status == RunStatus.FINISHED else 1
    except KeyboardInterrupt:
        # SIGTERM or Ctrl-C. execute_run has recorded it if training had begun;
        # otherwise (still importing TensorFlow, say) it is recorded here.
        store.transition(
            run_id,
            RunStatus.STOPPED,
            from_statuses=_ACTIVE,
            owner_pid=os.getpid(),
            finished_at=time.time(),
            error="The worker was terminated before the run finished; the epochs recorded so far are kept.",
        )
        exit_code = 128 + signal.SIGTERM
    except Exception as exc:  # a failure outside execute_run, e.g. TensorFlow cannot be imported
        error = f"The worker failed before training: {type(exc).__name__}: {exc}"
        detail: str | None = traceback.format_exc()
        if isinstance(exc, OSError):  # names the server's paths: the detail goes to this log only
            error = errors.os_error_sentence(exc, run_id, paths.run_dir(run_id, create=False).is_dir())
            print(f"run {run_id}: {error}\n{detail}", file=sys.stderr, flush=True)
            detail = None
        store.transition(
            run_id,
            RunStatus.FAILED,
            from_statuses=_ACTIVE,
            owner_pid=os.getpid(),
            finished_at=time.time(),
            error=error,
            traceback=detail,
        )
        store.log_event(run_id, f"worker failed: {error}", "error")
        exit_code = 1
    finally:
        # The run has its outcome; a late SIGTERM must not cut the hand-over to the next run short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            # A sweep's trial may have ended with this run: tell its search, queue the next trial.
            from engine.sweeps import control as sweep_control

            queued = sweep_control.after_run(store, run_id)
            if queued:
                print(f"queued the sweep's next trial run(s): {', '.join(map(str, queued))}", flush=True)
        except Exception:
            log.exception("advancing the sweep of run %s failed", run_id)
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
        # Last, so the next run starts without waiting for the copy: the folder copy of this run's
        # outcome, and a backup of the database that holds it.
        journal.run_ended(store, run_id)
    return exit_code


def testing_module() -> ModuleType | None:
    """The testing module named by ``CONV3D_LAB_TEST_WORKER`` (imported), or None (always, in production).

    It provides ``execute(store, run_id, train) -> RunStatus`` (this worker's run), ``callbacks()``
    (extra Keras callbacks for a foreground ``engine train``) and ``imports_tensorflow()`` (whether a
    warm standby imports TensorFlow before its claim).
    """
    name = os.environ.get(TEST_WORKER_ENV)
    return importlib.import_module(name) if name else None


def _execute(store: RunStore, run_id: int) -> RunStatus:
    """Train the run (or let the testing module execute it); returns its final status."""
    testing = testing_module()
    if testing is not None:
        return testing.execute(store, run_id, train)
    return train(store, run_id)


def train(store: RunStore, run_id: int, *, callbacks: Sequence[Any] = ()) -> RunStatus:
    """Train claimed run ``run_id`` here, with its sweep's pruner when it is an Optuna trial."""
    from engine.sweeps import pruning
    # Imports TensorFlow: only here, in the worker.
    from engine.training import execute_run

    pruner = pruning.pruner_for(store, store.get_run(run_id))
    summary = execute_run(store, run_id, verbose=2, callbacks=callbacks, pruner=pruner)
    print(json.dumps(summary), flush=True)
    return RunStatus(summary["status"])


def _raise_keyboard_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


__all__ = ["TEST_WORKER_ENV", "run_worker", "testing_module", "train", "work_claimed"]
