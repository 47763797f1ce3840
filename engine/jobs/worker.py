"""The worker: ``python -m engine worker RUN_ID`` executes one claimed run in its own process.

``schedule`` starts it detached (its own session, output appended to
``runs/<id>/worker.log``). It records its pid, host and a heartbeat, trains
through ``engine.training.execute_run`` (which records the outcome), and then
schedules the queue, so the next queued run starts by itself. SIGTERM (the
second step of a stop) ends the run ``stopped``.

The process's heartbeat thread lives here (one per run, from the claim to the
outcome, TensorFlow's import included); ``execute_run`` does not start another.

Test hooks, read from the environment:

- the training hooks of engine/training/hooks.py (a slow batch, a failure at
  epoch N), handed to ``execute_run`` as an extra Keras callback;
- ``CONV3D_LAB_FAKE_WORKER_S=SECONDS`` trains nothing: the worker holds the run
  for that long (still honouring the stop flag) and marks it finished. No
  TensorFlow is imported, so tests of the queue's concurrency can run many
  workers on a small machine; the claiming and scheduling are the real ones.
  With ``CONV3D_LAB_FAKE_CURVE=1`` the held run also records a made-up
  validation curve per epoch (a smooth function of its learning rate and
  dropout) and consults its sweep's pruner each epoch, as the real recorder
  does, so sweep tests exercise ask / tell and pruning without TensorFlow.
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

from engine import errors, paths
from engine.jobs import liveness, processes
from engine.jobs.control import schedule
from engine.jobs.standby import ensure_standby
from engine.runs import RunStatus
from engine.store import RunStore, journal, open_store
from engine.store.heartbeat import Heartbeat

log = logging.getLogger(__name__)

FAKE_WORKER_ENV = "CONV3D_LAB_FAKE_WORKER_S"
FAKE_CURVE_ENV = "CONV3D_LAB_FAKE_CURVE"
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
        error, detail = f"The worker failed before training: {type(exc).__name__}: {exc}", traceback.format_exc()
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


def _execute(store: RunStore, run_id: int) -> RunStatus:
    """Train the run (or hold it, under the fake-worker test hook); returns its final status."""
    fake_seconds = os.environ.get(FAKE_WORKER_ENV)
    if fake_seconds:
        return _hold_run(store, run_id, float(fake_seconds))
    # Imports TensorFlow: only here, in the worker.
    from engine.training import execute_run, hooks

    test_hooks = hooks.from_environment()
    if test_hooks:
        print(f"test hooks: {test_hooks.describe()}", flush=True)
    summary = execute_run(store, run_id, verbose=2, callbacks=[test_hooks] if test_hooks else ())
    print(json.dumps(summary), flush=True)
    return RunStatus(summary["status"])


def _raise_keyboard_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------- test hooks
def _hold_run(store: RunStore, run_id: int, seconds: float) -> RunStatus:
    store.log_event(run_id, f"test hook {FAKE_WORKER_ENV}: holding the run for {seconds:g} s (pid {os.getpid()})")
    status = RunStatus.FINISHED
    run = store.get_run(run_id)
    curve = os.environ.get(FAKE_CURVE_ENV) == "1"
    pruner = None
    if curve:
        from engine.sweeps import pruning

        pruner = pruning.pruner_for(store, run)
    epochs = run.epochs_total
    start_epoch = run.resume_from_epoch or 0
    if curve and start_epoch:
        store.discard_after_epoch(run_id, start_epoch)
    epoch_s = seconds / max(1, epochs - start_epoch)
    for epoch in range(start_epoch + 1, epochs + 1):
        deadline = time.monotonic() + epoch_s
        while time.monotonic() < deadline and status == RunStatus.FINISHED:
            if store.stop_requested(run_id):
                status = RunStatus.STOPPED
            time.sleep(0.05)
        if status != RunStatus.FINISHED:
            break
        if curve:
            logs = _fake_epoch(run.config, epoch)
            store.log_metrics(run_id, [{"kind": "epoch", "epoch": epoch, "name": k, "value": v} for k, v in logs.items()])
            best = store.get_run(run_id).best_value
            if best is None or logs["val_loss"] < best:
                store.update_run(run_id, best_value=logs["val_loss"], best_epoch=epoch)
            store.update_run(run_id, epochs_done=epoch, resume_from_epoch=None)
            if pruner is not None and pruner.report(epoch, logs):
                status = RunStatus.PRUNED
                break
    fields = {"finished_at": time.time()}
    if status == RunStatus.FINISHED:
        fields["epochs_done"] = epochs
    store.transition(run_id, status, from_statuses=_ACTIVE, owner_pid=os.getpid(), **fields)
    store.log_event(run_id, f"test hook {FAKE_WORKER_ENV}: run {status.label}")
    return status


def _fake_epoch(config, epoch: int) -> dict[str, float]:
    """A made-up validation curve: best near learning rate 3e-3 and dropout 0.2, rising with the epochs."""
    import math

    quality = math.exp(-((math.log10(config.training.learning_rate) + 2.5) ** 2))
    quality *= 1.0 - abs((config.model.dropout_rate or 0.0) - 0.2)
    accuracy = 0.1 + 0.85 * quality * (1.0 - 0.5 ** epoch) + 0.01 * ((config.data.fold or 0) - 1)
    return {"val_accuracy": accuracy, "val_loss": 2.5 * (1.0 - accuracy), "accuracy": accuracy, "loss": 2.5 * (1.0 - accuracy)}


__all__ = ["FAKE_CURVE_ENV", "FAKE_WORKER_ENV", "run_worker", "work_claimed"]
