"""The bridge from ``model.fit`` into the run store.

``StoreRecorder`` is the only hook into training (as KerasTuner's
TunerCallback forwards ``on_epoch_end`` into its bookkeeping). Per batch it
writes the training loss and accuracy (throttled), checks the stop flag and
NaN losses; per epoch it runs the one validation pass (``fit`` is given no
validation data: ``predict`` once, and the validation loss and metrics
computed from those predictions by the model's own compiled loss and the
recipe's metrics, then put into the epoch's logs for the callbacks after it),
writes every metric, the current learning rate, the epoch time and throughput
and the validation predictions, and keeps ``last.keras`` and ``best.keras``
(atomically; see below) with the run folder's copy of the record
(engine/store/journal.py); in a sweep's Optuna trial it then asks the pruner
whether to go on.

Checkpoints are written by elapsed time, not every epoch: after the first
epoch, then at the end of an epoch when ``CHECKPOINT_INTERVAL_S`` have passed
since the last write, and at the end of training. An improvement in between
keeps the weights in memory until that write. Each file names its epoch
(``checkpoints.saved_epoch``), so a resume continues after the epoch
``last.keras`` holds; a crash or a stop loses at most that interval of training.

It writes only while this process holds the run (status running, this pid
recorded): a process that was suspended, judged gone and replaced by a
resumed worker stops at once instead of appending to the other's history
(``lost_claim``); the store's unique metric rows back this up.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from engine.weights import checkpoints
from engine.errors import DuplicateMetrics
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, SAMPLES_PER_S_METRIC
from engine.store import RunStore, journal
from engine.training import recipe
from engine.training.pipeline import probabilities_from_outputs

# At most this many per-batch rows (loss + accuracy) per second go to the store, besides each
# epoch's first and last batch.
BATCH_ROWS_PER_SECOND = 2.0
# The stop flag is read from the store at most this often (seconds).
STOP_CHECK_INTERVAL_S = 0.5
# last.keras (and a pending best.keras) is written at the end of an epoch at most this often (seconds),
# besides after the first epoch and at the end of training: on epochs of a second, saving every epoch
# cost a quarter of the training time; a crash loses at most this much training.
CHECKPOINT_INTERVAL_S = 30.0


def recorded_best(store: RunStore, run_id: int, monitor: str, mode: str) -> tuple[float | None, int | None]:
    """(value, epoch) of the best ``monitor`` among the run's recorded epochs (the first of equal ones, as the
    recorder keeps it), or (None, None)."""
    best: tuple[float | None, int | None] = (None, None)
    for row in store.epoch_history(run_id):
        value = row.get(monitor)
        if value is None or not math.isfinite(float(value)):
            continue
        if best[0] is None or (float(value) < best[0] if mode == "min" else float(value) > best[0]):
            best = (float(value), int(row["epoch"]))
    return best


class Pruner(Protocol):
    """What the recorder asks after each recorded epoch whether to go on (a sweep trial's median rule).

    Training receives it from its caller (the worker builds one for an Optuna trial with
    ``engine.sweeps.pruning.pruner_for``) and imports nothing from the sweeps.
    """

    def report(self, epoch: int, logs: dict[str, Any]) -> bool:
        """Report epoch ``epoch`` (counted from 1) and its logs; True ends training here (pruned)."""
        ...


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class StoreRecorder(keras.callbacks.Callback):
    def __init__(
        self,
        store: RunStore,
        run_id: int,
        run_dir: Path,
        *,
        validation: tuple[object, np.ndarray, np.ndarray],
        num_classes: int,
        num_train_samples: int,
        monitor: str,
        mode: str,
        best_value: float | None = None,
        best_epoch: int | None = None,
        pruner: Pruner | None = None,
        checkpoint_interval_s: float | None = None,
    ):
        super().__init__()
        self.store = store
        self.run_id = run_id
        self.run_dir = run_dir
        self.val_dataset, self.val_labels, self.val_sample_ids = validation
        self.num_classes = num_classes
        self.num_train_samples = num_train_samples
        self.monitor = monitor
        self.mode = mode
        self.best_value = best_value
        self.best_epoch = best_epoch
        self.stopped_by_user = False
        # A sweep trial's pruning check, handed in by the caller: report(epoch, logs) -> stop?
        self.pruner = pruner
        self.pruned_epoch: int | None = None
        # Set when another process took this run over: nothing more is written.
        self.lost_claim: str | None = None
        self.nan_epoch: int | None = None
        self.epochs_completed: int | None = None
        self._epoch_started = 0.0
        self._last_batch_write = 0.0
        self._last_stop_check = 0.0
        self._epoch = 0
        self.checkpoint_interval_s = CHECKPOINT_INTERVAL_S if checkpoint_interval_s is None else checkpoint_interval_s
        self._val_metrics: list[keras.metrics.Metric] | None = None
        self.saved_epoch: int | None = None  # the epoch last.keras holds (written by this process)
        self._saved_at = 0.0
        self._best_unsaved = False  # best_epoch is newer than best.keras
        self._best_weights: list[np.ndarray] | None = None  # its weights, when they are not the model's

    # ----------------------------------------------------------- batches
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1  # the store counts epochs from 1
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_epoch = self._epoch
            self.model.stop_training = True
            return
        now = time.monotonic()
        # Throttled to BATCH_ROWS_PER_SECOND, but every epoch's first and last batch are kept, so a
        # short run (epochs of a fraction of a second) still draws a per-batch curve, not two points.
        last_step = (self.params or {}).get("steps")
        edge = batch == 0 or (last_step is not None and batch + 1 == last_step)
        if edge or now - self._last_batch_write >= 1.0 / BATCH_ROWS_PER_SECOND:
            self._last_batch_write = now
            rows = [
                {"kind": "batch", "epoch": self._epoch, "step": batch, "name": name, "value": float(logs[name])}
                for name in ("loss", "accuracy")
                if name in logs
            ]
            self._write_metrics(rows)
        self._check_stop(now)

    def _check_stop(self, now: float) -> None:
        if now - self._last_stop_check >= STOP_CHECK_INTERVAL_S:
            self._last_stop_check = now
            run = self.store.get_run(self.run_id)
            if not run.owned_by(os.getpid()):
                self._lose_claim(f"the run is {run.status.label} with pid {run.pid} recorded")
            elif run.stop_requested:
                self.stopped_by_user = True
                self.model.stop_training = True

    def _lose_claim(self, why: str) -> None:
        if self.lost_claim is None:
            self.lost_claim = why
        self.model.stop_training = True

    def _write_metrics(self, rows) -> bool:
        """Insert rows unless the claim is lost; False (and the claim lost) when the store refuses them."""
        if self.lost_claim is not None:
            return False
        try:
            self.store.log_metrics(self.run_id, rows)
        except DuplicateMetrics as e:
            self._lose_claim(str(e))
            return False
        return True

    # ------------------------------------------------------------ epochs
    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_by_user or self.nan_epoch is not None or self.lost_claim is not None:
            # A partial epoch (or no longer this process's run): keep what was recorded up to the last
            # complete epoch.
            return
        run = self.store.get_run(self.run_id)
        if not run.owned_by(os.getpid()):
            self._lose_claim(f"the run is {run.status.label} with pid {run.pid} recorded")
            return
        logs_in = logs
        logs = dict(logs or {})
        epoch_number = epoch + 1
        if not math.isfinite(float(logs.get("loss", 0.0))):
            self.nan_epoch = epoch_number
            self.model.stop_training = True
            return
        validation = self._validate(epoch_number)
        if validation is None:
            return  # stopped (or no longer this process's run) during the validation pass
        if logs_in is not None:
            logs_in.update(validation)  # the same dict goes on to ReduceLROnPlateau, EarlyStopping, History
        logs.update(validation)
        if not math.isfinite(float(logs.get("val_loss", 0.0))):
            self.nan_epoch = epoch_number
            self.model.stop_training = True
            return
        elapsed = time.perf_counter() - self._epoch_started
        # ReduceLROnPlateau adds "learning_rate" to the logs: the same current rate under the
        # config's name for the initial rate. One name for it is kept.
        logs.pop("learning_rate", None)
        logs[CURRENT_LR_METRIC] = current_learning_rate(self.model.optimizer)
        logs[EPOCH_TIME_METRIC] = elapsed
        logs[SAMPLES_PER_S_METRIC] = self.num_train_samples / elapsed if elapsed > 0 else 0.0

        value = logs.get(self.monitor)
        if value is not None and self._improved(float(value)):
            self.best_value, self.best_epoch = float(value), epoch_number
            self._best_unsaved, self._best_weights = True, None
        # Checkpoints first (each atomically), then the store. Between two writes the store is ahead of
        # last.keras; the file names its epoch, and a resume continues from there.
        checkpointed = self.saved_epoch is None or time.monotonic() - self._saved_at >= self.checkpoint_interval_s
        if checkpointed:
            self._write_checkpoints(epoch_number)
        elif self._best_unsaved and self.best_epoch == epoch_number:
            self._best_weights = self.model.get_weights()  # written with the next checkpoint
        rows = [
            {"kind": "epoch", "epoch": epoch_number, "name": name, "value": float(value)}
            for name, value in logs.items()
            if np.isscalar(value) or np.ndim(value) == 0
        ]
        if not self._write_metrics(rows):
            return
        self.store.update_run(
            self.run_id,
            epochs_done=epoch_number,
            best_value=self.best_value,
            best_epoch=self.best_epoch,
            heartbeat_at=time.time(),
        )
        self.epochs_completed = epoch_number
        if checkpointed:
            # The run folder's own copy of the record and the curves, as far as its checkpoints go.
            journal.save(self.store, self.run_id)
        if self.pruner is not None and self.pruner.report(epoch_number, logs):
            # Optuna's median rule: this trial's curve is below the others' at this epoch. The epoch
            # is recorded in full; training ends here and the run is marked pruned.
            self.pruned_epoch = epoch_number
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        # The end of training (all epochs, early stopping, pruning): the model holds the last completed
        # epoch's weights. After a stop, a NaN or a lost claim it holds a partial epoch's (or nothing of
        # ours): the checkpoints stay as last written.
        if self.stopped_by_user or self.nan_epoch is not None or self.lost_claim is not None:
            return
        if self.epochs_completed is not None and self.epochs_completed != self.saved_epoch:
            self._write_checkpoints(self.epochs_completed)
            journal.save(self.store, self.run_id)

    def _validate(self, epoch_number: int) -> dict[str, float] | None:
        """Predict the validation split once; store the predictions and return val_loss, val_accuracy, val_auc
        and the macro precision / recall computed from them. None when a stop came during the pass."""
        if not len(self.val_labels):
            return {}
        outputs = self.model.predict(self.val_dataset, verbose=0, callbacks=[_StopCheck(self)])
        if self.stopped_by_user or self.lost_claim is not None:
            return None
        probabilities = probabilities_from_outputs(outputs, self.num_classes)
        self.store.save_predictions(
            self.run_id, epoch_number, "val", self.val_sample_ids, self.val_labels, probabilities
        )
        if self._val_metrics is None:  # built once (their variables), reset by evaluate_outputs every epoch
            self._val_metrics = recipe.make_metrics(self.num_classes)
        values = recipe.evaluate_outputs(self.model, self.val_labels, outputs, self.num_classes, self._val_metrics)
        values.update(recipe.macro_precision_recall(self.val_labels, probabilities))
        return {f"val_{name}": value for name, value in values.items()}

    def _write_checkpoints(self, epoch_number: int) -> None:
        """last.keras from the model (the end of ``epoch_number``), and best.keras when a newer best is pending."""
        last, best = self.run_dir / checkpoints.LAST, self.run_dir / checkpoints.BEST
        checkpoints.save(self.model, last, epoch=epoch_number)
        if self._best_unsaved:
            if self.best_epoch == epoch_number:
                # The same weights as last.keras: linked, not serialised a second time.
                checkpoints.duplicate(last, best)
            elif self._best_weights is not None:
                current = self.model.get_weights()
                self.model.set_weights(self._best_weights)
                try:
                    checkpoints.save(self.model, best, epoch=self.best_epoch)
                finally:
                    self.model.set_weights(current)
            self._best_unsaved, self._best_weights = False, None
        self.saved_epoch, self._saved_at = epoch_number, time.monotonic()

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value


class _StopCheck(keras.callbacks.Callback):
    """The recorder's stop check during its validation ``predict`` (which ends early on a stop).

    A callback of its own: ``predict`` sets its callbacks' ``params``, which the recorder's hold ``fit``'s.
    """

    def __init__(self, recorder: StoreRecorder):
        super().__init__()
        self.recorder = recorder

    def on_predict_batch_end(self, batch, logs=None):
        # The validation pass can take a while on big volumes: notice a stop there too.
        recorder = self.recorder
        recorder._check_stop(time.monotonic())
        if recorder.stopped_by_user or recorder.lost_claim is not None:
            self.model.stop_predicting = True
