"""The bridge from ``model.fit`` into the run store.

``StoreRecorder`` is the only hook into training (as KerasTuner's
TunerCallback forwards ``on_epoch_end`` into its bookkeeping). Per batch it
writes the training loss and accuracy (throttled), checks the stop flag and
NaN losses; per epoch it writes every metric, the current learning rate, the epoch
time and throughput, the validation predictions, ``last.keras`` and, when the
monitored metric improved, ``best.keras`` (both atomically); in a sweep's
Optuna trial it then asks the pruner whether to go on.

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

from engine import checkpoints
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

    def on_test_batch_end(self, batch, logs=None):
        # Validation can take a while on big volumes: notice a stop there too.
        self._check_stop(time.monotonic())

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
        logs = dict(logs or {})
        epoch_number = epoch + 1
        if not math.isfinite(float(logs.get("loss", 0.0))) or not math.isfinite(float(logs.get("val_loss", 0.0))):
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

        outputs = self.model.predict(self.val_dataset, verbose=0)
        probabilities = probabilities_from_outputs(outputs, self.num_classes)
        self.store.save_predictions(
            self.run_id, epoch_number, "val", self.val_sample_ids, self.val_labels, probabilities
        )
        logs.update({f"val_{name}": value
                     for name, value in recipe.macro_precision_recall(self.val_labels, probabilities).items()})

        # Checkpoints first (each atomically), then the store: a crash between the two leaves a
        # checkpoint one epoch ahead at worst, never a missing or half-written one.
        checkpoints.save(self.model, self.run_dir / checkpoints.LAST)
        value = logs.get(self.monitor)
        if value is not None and self._improved(float(value)):
            # The same weights as last.keras: linked, not serialised a second time (half the saving per epoch).
            checkpoints.duplicate(self.run_dir / checkpoints.LAST, self.run_dir / checkpoints.BEST)
            self.best_value, self.best_epoch = float(value), epoch_number
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
        journal.save(self.store, self.run_id)  # the run folder's own copy of the record and the curves
        if self.pruner is not None and self.pruner.report(epoch_number, logs):
            # Optuna's median rule: this trial's curve is below the others' at this epoch. The epoch
            # is recorded in full; training ends here and the run is marked pruned.
            self.pruned_epoch = epoch_number
            self.model.stop_training = True

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value
