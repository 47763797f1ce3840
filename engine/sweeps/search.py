"""The searches: each hands out one configuration (a dict of dotted paths -> values) per trial.

Like KerasTuner's ``Oracle``: ``ask(trial)`` gives the next parameters,
``tell(trial, outcome, value)`` hands back how they did. Nothing here trains
or queues; ``engine.sweeps.control`` turns the parameters into runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.runs import TrialOutcome, TrialRecord
from engine.sweeps import study
from engine.sweeps.spec import Param, SweepSpec

Params = dict[str, Any]


class Search:
    def __init__(self, spec: SweepSpec):
        self.spec = spec

    def ask(self, trial: int) -> tuple[Params, int | None]:
        """Parameters of trial number ``trial`` and the search's own trial number (Optuna's), if any."""
        raise NotImplementedError

    def tell(self, record: TrialRecord, outcome: TrialOutcome, value: float | None) -> None:
        """How the trial did (grid and random need nothing back)."""

    def catch_up(self, records: list[TrialRecord]) -> None:
        """Tell what the store knows and the search does not yet (nothing for grid and random)."""


class GridSearch(Search):
    def ask(self, trial: int) -> tuple[Params, int | None]:
        return self.spec.grid()[trial], None


class RandomSearch(Search):
    def ask(self, trial: int) -> tuple[Params, int | None]:
        rng = np.random.default_rng([self.spec.seed, trial])  # reproducible, and independent per trial
        return {path: _draw(param, rng) for path, param in self.spec.space.items()}, None


def _draw(param: Param, rng: np.random.Generator) -> Any:
    if param.choices is not None:
        return param.choices[int(rng.integers(len(param.choices)))]
    if param.integer:
        if param.log:
            return int(round(math.exp(rng.uniform(math.log(param.low), math.log(param.high)))))
        return int(rng.integers(int(param.low), int(param.high) + 1))
    if param.log:
        return float(math.exp(rng.uniform(math.log(param.low), math.log(param.high))))
    return float(rng.uniform(param.low, param.high))


class OptunaSearch(Search):
    """Optuna's TPE sampler through ask / tell on the study stored in the lab's database."""

    def __init__(self, spec: SweepSpec, url: str, sweep_id: int):
        super().__init__(spec)
        self.url, self.sweep_id = url, sweep_id

    def ask(self, trial: int) -> tuple[Params, int | None]:
        optuna_trial = study.load(self.url, self.sweep_id, self.spec, trial).ask()
        params = {}
        for path, param in self.spec.space.items():
            if param.choices is not None:
                params[path] = optuna_trial.suggest_categorical(path, list(param.choices))
            elif param.integer:
                params[path] = optuna_trial.suggest_int(path, int(param.low), int(param.high), log=param.log)
            else:
                params[path] = optuna_trial.suggest_float(path, float(param.low), float(param.high), log=param.log)
        return params, optuna_trial.number

    def tell(self, record: TrialRecord, outcome: TrialOutcome, value: float | None) -> None:
        import optuna

        number = record.optuna_trial_number
        if number is None:
            return
        the_study = study.load(self.url, self.sweep_id, self.spec)
        state = {
            TrialOutcome.COMPLETE: optuna.trial.TrialState.COMPLETE,
            TrialOutcome.PRUNED: optuna.trial.TrialState.PRUNED,
            TrialOutcome.FAIL: optuna.trial.TrialState.FAIL,
        }[outcome]
        if state == optuna.trial.TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            state = optuna.trial.TrialState.FAIL
        try:
            # skip_if_finished: told already (a retry after a crash between the store and Optuna).
            if state == optuna.trial.TrialState.COMPLETE:
                the_study.tell(number, value, skip_if_finished=True)
            else:
                the_study.tell(number, state=state, skip_if_finished=True)
        except (RuntimeError, ValueError):
            # Another process told it between Optuna's check and its write (a catch-up tell racing the one
            # that ended it): fine when the trial is now finished.
            if not study.frozen_trial(the_study, number).state.is_finished():
                raise

    def catch_up(self, records: list[TrialRecord]) -> None:
        """Tell the study about trials the store has ended but the study still runs (a process died
        between the two writes)."""
        import optuna

        ended = {r.optuna_trial_number: r for r in records
                 if r.outcome is not None and r.optuna_trial_number is not None}
        if not ended:
            return
        the_study = study.load(self.url, self.sweep_id, self.spec)
        for trial in the_study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
            record = ended.get(trial.number)
            if record is not None and record.outcome is not None:
                self.tell(record, record.outcome, record.value)


def for_spec(spec: SweepSpec, url: str, sweep_id: int) -> Search:
    if spec.method == "grid":
        return GridSearch(spec)
    if spec.method == "random":
        return RandomSearch(spec)
    return OptunaSearch(spec, url, sweep_id)


__all__ = ["GridSearch", "OptunaSearch", "RandomSearch", "Search", "for_spec"]
