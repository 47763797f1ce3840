"""The learning-rate range test: an exponential sweep of the rate over a bounded number of batches.

From fresh weights, each batch trains at a rate ``lr_range.rates`` gives (a
Keras callback sets the optimizer's rate before every batch); the sweep stops
when the smoothed loss diverges. The result (rates, losses, suggestion) is
recorded as a run of its own: ``lr_find.json`` in its folder and the suggested
rate as a check row, so ``python -m engine show RUN`` and the pages can look
at it later.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from typing import Any

import keras
import numpy as np

from engine import models, paths
from engine.config import RunConfig
from engine.doctor import lr_range
from engine.doctor.findings import CHECK_KIND, LR_FIND_FILE, LR_FIND_SUGGESTION
from engine.machine.devices import FOREGROUND_SLOT
from engine.runs import LR_FIND_TAG, RunStatus
from engine.store import RunStore
from engine.store.heartbeat import Heartbeat

DEFAULT_MIN_LR, DEFAULT_MAX_LR, DEFAULT_STEPS = lr_range.DEFAULT_MIN_LR, lr_range.DEFAULT_MAX_LR, lr_range.DEFAULT_STEPS


class LearningRateSweep(keras.callbacks.Callback):
    """Sets the optimizer's rate before each batch and records the batch's loss; stops on divergence.

    ``fit`` runs one batch per epoch here, so the epoch's logged loss is that batch's own loss
    (Keras logs a running mean within an epoch).
    """

    def __init__(self, learning_rates: np.ndarray):
        super().__init__()
        self.learning_rates = learning_rates
        self.losses: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = float(self.learning_rates[len(self.losses)])

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", math.nan))
        self.losses.append(loss)
        if len(self.losses) >= len(self.learning_rates) or lr_range.diverged(lr_range.smooth(self.losses)):
            self.model.stop_training = True


def find_learning_rate(store: RunStore, config: RunConfig, *, min_lr: float = DEFAULT_MIN_LR,
                       max_lr: float = DEFAULT_MAX_LR, steps: int = DEFAULT_STEPS) -> dict[str, Any]:
    """Sweep, record and return {"run_id", "learning_rates", "losses", "smoothed", "suggestion", ...}."""
    config = config.copy()
    config.name = config.name or f"lr-find {config.data.dataset} {config.model.architecture}"
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    now = time.time()
    # Held like a foreground run (pid, host, heartbeat), so `runs` never takes it for a dead one; tagged
    # so run lists can tell it from training runs.
    store.update_run(run_id, pid=os.getpid(), host=socket.gethostname(), slot=FOREGROUND_SLOT, started_at=now,
                     heartbeat_at=now, tags=[LR_FIND_TAG])
    with Heartbeat(store, run_id):
        return _sweep(store, run_id, config, min_lr, max_lr, steps)


def _sweep(
    store: RunStore, run_id: int, config: RunConfig, min_lr: float, max_lr: float, steps: int
) -> dict[str, Any]:
    from engine.training import pipeline, recipe
    from engine.training.run import _set_determinism, prepare_data

    try:
        training = config.training
        _set_determinism(training.seed)
        data = prepare_data(config, paths.run_dir(run_id), store, run_id)
        model = models.build_model(config.model.architecture, data.volume_shape, data.num_classes, config.model)
        model.compile(optimizer=recipe.make_optimizer(training, min_lr),
                      loss=recipe.make_loss(training, data.num_classes))
        train = pipeline.make_dataset(
            data.x_train, pipeline.encode_labels(data.y_train, data.num_classes), training.batch_size,
            training=True, seed=training.seed, training_config=training,
        ).repeat()
        sweep = LearningRateSweep(lr_range.rates(min_lr, max_lr, steps))
        model.fit(train, epochs=steps, steps_per_epoch=1, callbacks=[sweep], verbose=0, shuffle=False,
                  class_weight=recipe.class_weights(training, data.y_train, data.num_classes))
        rates = sweep.learning_rates[: len(sweep.losses)]
        suggestion = lr_range.suggest(rates, np.asarray(sweep.losses))
        result = {
            "run_id": run_id, "dataset": config.data.dataset, "architecture": config.model.architecture,
            "batch_size": training.batch_size, "optimizer": training.optimizer, "steps": len(sweep.losses),
            "learning_rates": rates.tolist(), "losses": sweep.losses,
            "smoothed": lr_range.smooth(sweep.losses).tolist(), "suggestion": suggestion.to_dict(),
        }
        (paths.run_dir(run_id) / LR_FIND_FILE).write_text(json.dumps(result, allow_nan=True))
        store.log_metrics(run_id, [{"kind": CHECK_KIND, "epoch": 0, "name": LR_FIND_SUGGESTION,
                                    "value": suggestion.suggested}])
        store.log_event(run_id, f"lr-find: {len(sweep.losses)} batches from {min_lr:g} to {rates[-1]:.3g}; "
                                f"suggested learning rate {suggestion.suggested:.3g}")
        store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], owner_pid=os.getpid(),
                         finished_at=time.time())
        return result
    except BaseException as e:
        store.transition(run_id, RunStatus.FAILED, from_statuses=[RunStatus.RUNNING], owner_pid=os.getpid(),
                         finished_at=time.time(),
                         error=f"lr-find failed: {type(e).__name__}: {e}")
        raise
