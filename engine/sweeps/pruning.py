"""The per-epoch pruning check of an Optuna trial's run: the worker builds it (``pruner_for``) and hands
it to training, whose recorder calls ``report`` (training itself imports nothing from the sweeps).

A run of a sweep trial reports its validation metric to the trial each epoch
(the step is ``fold * epochs + epoch``, so each fold of a trial is compared
with the same fold of the other trials) and asks Optuna's median pruner
whether to stop. The recorder (engine/training/callbacks.py) and the tests'
held runs (tests/fake_worker.py) call ``report``; a True answer ends the run
``pruned``, its epochs kept.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from engine.runs import RunRecord
from engine.store import RunStore
from engine.sweeps import study
from engine.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)


class TrialPruner:
    def __init__(self, url: str, sweep_id: int, spec: SweepSpec, optuna_trial_number: int, step_offset: int):
        self.metric = spec.metric
        self._step_offset = step_offset
        self._trial = None
        self._args = (url, sweep_id, spec, optuna_trial_number)

    def _optuna_trial(self):
        if self._trial is None:
            self._trial = study.running_trial(*self._args)
        return self._trial

    def report(self, epoch: int, logs: dict[str, Any]) -> bool:
        """Report this epoch's metric; True when the trial should stop here (pruned)."""
        value = logs.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return False
        try:
            trial = self._optuna_trial()
            trial.report(float(value), self._step_offset + int(epoch))
            return bool(trial.should_prune())
        except Exception:  # the pruning check is advice: a busy database never fails the run
            log.warning("the pruning check of epoch %s failed; training continues", epoch, exc_info=True)
            return False


def pruner_for(store: RunStore, run: RunRecord) -> TrialPruner | None:
    """The pruning check of ``run`` when it is a trial of an Optuna sweep; None otherwise."""
    if run.sweep_id is None or run.trial is None:
        return None
    sweep = store.get_sweep(run.sweep_id)
    spec = SweepSpec.from_dict(dict(sweep.spec))
    if spec.method != "optuna":
        return None
    record = next((t for t in store.list_trials(sweep.id) if t.trial == run.trial), None)
    if record is None or record.optuna_trial_number is None:
        return None
    step_offset = (run.config.data.fold or 0) * run.config.training.epochs
    return TrialPruner(store.url, sweep.id, spec, record.optuna_trial_number, step_offset)


__all__ = ["TrialPruner", "pruner_for"]
