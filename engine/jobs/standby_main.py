"""``python -m engine.jobs.standby_main SLOT``: the warm standby process (see engine/jobs/standby.py).

It writes its pidfile, imports TensorFlow, Keras and ``engine.training``, warms
Keras up with a tiny fit, then polls the queue every 0.2 s with the real,
atomic ``Store.claim_next_queued([slot])``. When it claims a run it removes
its pidfile, sends its output to the run's ``worker.log`` and becomes that
run's worker through ``worker.work_claimed``. It leaves after
``CONV3D_LAB_STANDBY_IDLE_S`` idle seconds (default 600), on SIGTERM, or when
its pidfile no longer names it.

A module of its own, at the top of the jobs package's imports: it uses the
worker and the queue control, and neither of them imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from engine.jobs import control, processes, standby, worker
from engine.store import open_store

log = logging.getLogger(__name__)

IDLE_ENV = "CONV3D_LAB_STANDBY_IDLE_S"
DEFAULT_IDLE_S = 600.0
POLL_INTERVAL_S = 0.2


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
    args = sys.argv[1:] if argv is None else argv
    slot = args[0]
    processes.lower_priority()  # a standby becomes a worker: the same priority
    idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    standby.write_pidfile(slot, os.getpid())
    signal.signal(signal.SIGTERM, _leave)
    store = open_store()
    started = time.monotonic()
    claim = None
    try:
        testing = worker.testing_module()
        if testing is None or testing.imports_tensorflow():
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
            if standby.read_pid(slot) != os.getpid():
                print("standby: the pidfile names another process; leaving", flush=True)
                return 0
            standby.write_pidfile(slot, os.getpid(), warm=True)
        idle_since = time.monotonic()
        while claim is None:
            claim = _claim(store, slot)
            if claim is not None:
                break
            if standby.read_pid(slot) != os.getpid():
                print("standby: the pidfile names another process; leaving", flush=True)
                return 0
            if time.monotonic() - idle_since >= idle_s:
                # Hand the slot back to schedule(), then claim once more: a run queued
                # while schedule() still saw this standby is never left waiting.
                standby.release_pidfile(slot)
                claim = _claim(store, slot)
                if claim is None:
                    print(f"standby: idle for {idle_s:g} s; leaving", flush=True)
                    return 0
                break
            time.sleep(POLL_INTERVAL_S)
    except _Leave:
        standby.release_pidfile(slot)
        if claim is None:
            print("standby: terminated while idle", flush=True)
            return 0
    except Exception:
        # E.g. TensorFlow cannot be imported. schedule() left this slot to us: hand the
        # queue back, so a waiting run gets a cold worker (which records the error).
        if claim is None:
            standby.release_pidfile(slot)
            control.schedule(store)
        raise
    finally:
        if claim is None:
            standby.release_pidfile(slot)
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
    standby.release_pidfile(slot)
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


if __name__ == "__main__":
    sys.exit(main())
