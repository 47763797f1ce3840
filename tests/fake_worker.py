"""The worker's testing module: named by ``CONV3D_LAB_TEST_WORKER`` (engine/jobs/worker.py), the one
testing entry point of production code. tests/conftest.py names it for every test session, so the
workers, standbys and foreground ``engine train`` processes that tests start load it.

What it does is chosen per test through the environment (unset: the real training, untouched):

- ``CONV3D_LAB_FAKE_WORKER_S=SECONDS`` trains nothing: the worker holds the run for that long (still
  honouring the stop flag) and marks it finished. No TensorFlow is imported, so tests of the queue's
  concurrency can run many workers on a small machine; the claiming and scheduling are the real ones.
  With ``CONV3D_LAB_FAKE_CURVE=1`` the held run also records a made-up validation curve per epoch (a
  smooth function of its learning rate and dropout) and consults its sweep's pruner each epoch, as
  the real recorder does, so sweep tests exercise ask / tell and pruning without TensorFlow.
- ``CONV3D_LAB_TEST_BATCH_DELAY_S=SECONDS`` sleeps that long after every training batch of the real
  training: a run slow enough to stop or kill at a chosen moment.
- ``CONV3D_LAB_TEST_FAIL_AT_EPOCH=N`` raises an exception in the first batch of epoch N of the real
  training: a run that fails in the middle of training.

The two training hooks are one extra Keras callback handed to ``execute_run`` (never a patch of the
recorder), so the recording code under test is the real one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from engine.runs import RunStatus
from engine.store import RunStore

FAKE_WORKER_ENV = "CONV3D_LAB_FAKE_WORKER_S"
FAKE_CURVE_ENV = "CONV3D_LAB_FAKE_CURVE"
BATCH_DELAY_ENV = "CONV3D_LAB_TEST_BATCH_DELAY_S"
FAIL_AT_EPOCH_ENV = "CONV3D_LAB_TEST_FAIL_AT_EPOCH"
ENV_NAMES = (FAKE_WORKER_ENV, FAKE_CURVE_ENV, BATCH_DELAY_ENV, FAIL_AT_EPOCH_ENV)
# The statuses a worker may end: its own run, or one reconcile wrongly took for dead.
_ACTIVE = (RunStatus.RUNNING, RunStatus.INTERRUPTED)


# ----------------------------------------------------------- the interface the worker calls
def execute(store: RunStore, run_id: int, train: Callable[..., RunStatus]) -> RunStatus:
    """The worker's run: held without training, or ``train`` (the real one) with the training hooks."""
    seconds = os.environ.get(FAKE_WORKER_ENV)
    if seconds:
        return hold_run(store, run_id, float(seconds))
    return train(store, run_id, callbacks=callbacks())


def callbacks() -> list[Any]:
    """The training hooks the environment asks for, as a list of at most one Keras callback."""
    delay_text, fail_text = os.environ.get(BATCH_DELAY_ENV), os.environ.get(FAIL_AT_EPOCH_ENV)
    if not delay_text and not fail_text:
        return []
    import keras  # only when a hook is set: the callback class needs it

    class TestHooks(keras.callbacks.Callback):
        def __init__(self, delay_s: float, fail_epoch: int | None):
            super().__init__()
            self.delay_s = delay_s
            self.fail_epoch = fail_epoch
            self._epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch + 1  # counted from 1, as the store does

        def on_train_batch_end(self, batch, logs=None):
            if self.fail_epoch is not None and self._epoch >= self.fail_epoch:
                raise RuntimeError(f"injected failure in epoch {self._epoch} (test hook {FAIL_AT_EPOCH_ENV})")
            time.sleep(self.delay_s)

    print(f"test hooks: {BATCH_DELAY_ENV}={delay_text}, {FAIL_AT_EPOCH_ENV}={fail_text}", flush=True)
    return [TestHooks(float(delay_text or 0), int(fail_text) if fail_text else None)]


def imports_tensorflow() -> bool:
    """Whether a warm standby should import TensorFlow first (not for held runs)."""
    return not os.environ.get(FAKE_WORKER_ENV)


# ----------------------------------------------------------------------------- a held run
def hold_run(store: RunStore, run_id: int, seconds: float) -> RunStatus:
    """Hold claimed run ``run_id`` for ``seconds`` (its epochs spread evenly), then record its end."""
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
            logs = fake_epoch(run.config, epoch)
            store.log_metrics(run_id, [{"kind": "epoch", "epoch": epoch, "name": k, "value": v} for k, v in logs.items()])
            best = store.get_run(run_id).best_value
            if best is None or logs["val_loss"] < best:
                store.update_run(run_id, best_value=logs["val_loss"], best_epoch=epoch)
            store.update_run(run_id, epochs_done=epoch, resume_from_epoch=None)
            if pruner is not None and pruner.report(epoch, logs):
                status = RunStatus.PRUNED
                break
    fields: dict[str, Any] = {"finished_at": time.time()}
    if status == RunStatus.FINISHED:
        fields["epochs_done"] = epochs
    store.transition(run_id, status, from_statuses=_ACTIVE, owner_pid=os.getpid(), **fields)
    store.log_event(run_id, f"test hook {FAKE_WORKER_ENV}: run {status.label}")
    return status


def fake_epoch(config, epoch: int) -> dict[str, float]:
    """A made-up validation curve: best near learning rate 3e-3 and dropout 0.2, rising with the epochs."""
    quality = math.exp(-((math.log10(config.training.learning_rate) + 2.5) ** 2))
    quality *= 1.0 - abs((config.model.dropout_rate or 0.0) - 0.2)
    accuracy = 0.1 + 0.85 * quality * (1.0 - 0.5 ** epoch) + 0.01 * ((config.data.fold or 0) - 1)
    return {"val_accuracy": accuracy, "val_loss": 2.5 * (1.0 - accuracy), "accuracy": accuracy, "loss": 2.5 * (1.0 - accuracy)}
