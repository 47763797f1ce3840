"""Warm standby workers: a worker process that has imported TensorFlow before a run is launched.

Importing TensorFlow and Keras takes about 6 s on a small CPU machine, which
would otherwise sit between a click on Launch and the first epoch. So the
dashboard (and every worker that ends) calls ``ensure_standby``: for the
first slot it starts ``python -m engine.jobs.standby_main SLOT`` (detached, its
own session, output in ``<lab home>/standby-<slot>.log``; the entry point
is engine/jobs/standby_main.py) unless a live one
exists. The standby writes ``<lab home>/standby-<slot>.pid``, imports
TensorFlow, Keras and ``engine.training``, warms Keras up with a tiny fit,
then polls the queue every 0.2 s with the real, atomic
``Store.claim_next_queued([slot])``. When it claims a run it removes its
pidfile (so a fresh standby can be started), sends its output to the run's
``worker.log`` and becomes that run's worker, exactly as ``run_worker`` does
after a claim; it exits when the run ends. One run per standby.

``schedule`` leaves a slot with a live standby to the standby. A standby
leaves after ``CONV3D_LAB_STANDBY_IDLE_S`` idle seconds (default 600), on
SIGTERM, or when its pidfile no longer names it; before it goes it removes
its pidfile and claims once more, so a run queued meanwhile is never left
waiting. ``CONV3D_LAB_STANDBY=0`` turns standbys off (every run then starts
a cold worker). The fake-worker test hook (``CONV3D_LAB_FAKE_WORKER_S``) is
honoured: such a standby imports no TensorFlow.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path

from engine import paths
from engine.jobs import processes
from engine.jobs.devices import slots

log = logging.getLogger(__name__)

STANDBY_ENV = "CONV3D_LAB_STANDBY"
IDLE_ENV = "CONV3D_LAB_STANDBY_IDLE_S"
DEFAULT_IDLE_S = 600.0
POLL_INTERVAL_S = 0.2
MODULE = "engine.jobs.standby_main"


def enabled() -> bool:
    return os.environ.get(STANDBY_ENV, "1").strip() != "0"


def pidfile_path(slot: str) -> Path:
    return paths.lab_home() / f"standby-{slot}.pid"


def log_path(slot: str) -> Path:
    return paths.lab_home() / f"standby-{slot}.log"


def command_marker(slot: str) -> tuple[str, ...]:
    """What a standby's command line contains (checked with processes.pid_alive)."""
    return (MODULE, str(slot))


def _read_pidfile(slot: str) -> tuple[int | None, bool]:
    """(pid, warm) from the pidfile: "PID" while the standby starts, "PID warm" once it is ready."""
    try:
        parts = pidfile_path(slot).read_text().split()
        return int(parts[0]), parts[1:] == ["warm"]
    except (OSError, ValueError, IndexError):
        return None, False


def _read_pid(slot: str) -> int | None:
    return _read_pidfile(slot)[0]


def warm_standby(slot: str | None = None) -> int | None:
    """The pid of a live standby of ``slot`` (default: the first) that has finished warming up, or None."""
    slot = slot or slots()[0]
    pid, warm = _read_pidfile(slot)
    if warm and pid and processes.pid_alive(pid, expect=command_marker(slot)):
        return pid
    return None


def live_standby(slot: str) -> int | None:
    """The pid of the live standby of ``slot`` (named by its pidfile), or None."""
    pid = _read_pid(slot)
    if pid and processes.pid_alive(pid, expect=command_marker(slot)):
        return pid
    return None


def ensure_standby(store=None) -> int | None:
    """Make sure a warm standby waits on the first slot; returns its pid (None when standbys are off).

    Cheap when one is alive (a pidfile read and a /proc check). ``store``
    selects the database the standby claims from (default: the lab's).
    """
    if not enabled():
        return None
    slot = slots()[0]
    pid = live_standby(slot)
    if pid:
        return pid
    if store is None:
        from engine.store import open_store

        store = open_store()
    # The pidfile is written here (and again by the standby itself), so a
    # second caller right after this one sees the standby and starts nothing.
    lock_path = pidfile_path(slot).with_suffix(".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = live_standby(slot)
        if pid:
            return pid
        process = processes.spawn_detached(
            [sys.executable, "-m", MODULE, str(slot)],
            processes.child_environment(store.url, slot),
            log_path(slot),
            f"warm standby for slot {slot}",
        )
        _write_pidfile(slot, process.pid)
    return process.pid


def _write_pidfile(slot: str, pid: int, warm: bool = False) -> None:
    path = pidfile_path(slot)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{pid}{' warm' if warm else ''}\n")
    os.replace(temporary, path)


def _release_pidfile(slot: str) -> None:
    """Remove the pidfile if it still names this process."""
    if _read_pid(slot) == os.getpid():
        try:
            pidfile_path(slot).unlink()
        except FileNotFoundError:
            pass


class _Leave(Exception):
    """SIGTERM while idle."""


def _leave(_signum, _frame):
    raise _Leave()


def _warm_up() -> None:
    """Import TensorFlow, Keras and the training code, and run a tiny fit (first-fit set-up costs)."""
    import numpy as np
    import tensorflow as tf
    import keras

    import engine.training  # noqa: F401

    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.Conv3D(2, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling3D(2)(x)
    x = keras.layers.GlobalAveragePooling3D()(x)
    x = keras.layers.Dropout(0.1)(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((8, 8, 8, 8, 1), "float32"), np.zeros(8, "int32"))
    ).batch(4)
    model.fit(data, validation_data=data, epochs=1, verbose=0)
    model.predict(data, verbose=0)
    del model
    keras.backend.clear_session()


def main(argv: list[str] | None = None) -> int:
    from engine.jobs import worker
    from engine.store import open_store

    args = sys.argv[1:] if argv is None else argv
    slot = args[0]
    idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    _write_pidfile(slot, os.getpid())
    signal.signal(signal.SIGTERM, _leave)
    store = open_store()
    started = time.monotonic()
    claim = None
    try:
        if not os.environ.get(worker.FAKE_WORKER_ENV):
            worker._install_test_hooks()
            import tensorflow  # noqa: F401
            import keras  # noqa: F401

            import engine.training  # noqa: F401

            print(f"standby: TensorFlow imported after {time.monotonic() - started:.1f} s", flush=True)
            claim = _claim(store, slot)
            if claim is None:
                try:
                    _warm_up()
                except Exception:  # only a head start; the run itself reports real problems
                    log.warning("standby: the warm-up fit failed", exc_info=True)
                print(f"standby: warm after {time.monotonic() - started:.1f} s", flush=True)
        if claim is None:
            if _read_pid(slot) != os.getpid():
                print("standby: the pidfile names another process; leaving", flush=True)
                return 0
            _write_pidfile(slot, os.getpid(), warm=True)
        idle_since = time.monotonic()
        while claim is None:
            claim = _claim(store, slot)
            if claim is not None:
                break
            if _read_pid(slot) != os.getpid():
                print("standby: the pidfile names another process; leaving", flush=True)
                return 0
            if time.monotonic() - idle_since >= idle_s:
                # Hand the slot back to schedule(), then claim once more: a run queued
                # while schedule() still saw this standby is never left waiting.
                _release_pidfile(slot)
                claim = _claim(store, slot)
                if claim is None:
                    print(f"standby: idle for {idle_s:g} s; leaving", flush=True)
                    return 0
                break
            time.sleep(POLL_INTERVAL_S)
    except _Leave:
        _release_pidfile(slot)
        if claim is None:
            print("standby: terminated while idle", flush=True)
            return 0
    except Exception:
        # E.g. TensorFlow cannot be imported. schedule() left this slot to us: hand the
        # queue back, so a waiting run gets a cold worker (which records the error).
        if claim is None:
            _release_pidfile(slot)
            from engine.jobs.control import schedule

            schedule(store)
        raise
    finally:
        if claim is None:
            _release_pidfile(slot)
    # SIGTERM stays blocked from the claim (in _claim) until the worker's own handler is in place.
    run_id, _slot = claim
    return worker.work_claimed(store, run_id, via=f"warm standby on slot {slot}", unblock_sigterm=True)


def _claim(store, slot: str):
    """Claim the next queued run for ``slot``; on success, SIGTERM is left blocked and the pidfile removed."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        claim = store.claim_next_queued([slot])
    except Exception:
        log.warning("standby: claiming failed; retrying", exc_info=True)
        claim = None
    if claim is None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return None
    _release_pidfile(slot)
    run_id = claim[0]
    store.update_run(run_id, pid=os.getpid())
    # From here on this process is the run's worker: its output goes to the run's log.
    run_log = processes.worker_log_path(run_id)
    with open(run_log, "ab") as handle:
        handle.write(f"--- warm standby (pid {os.getpid()}) claimed run {run_id} on slot {slot}\n".encode())
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(run_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    store.log_event(run_id, f"started on slot {slot} (warm standby worker pid {os.getpid()})")
    return claim

