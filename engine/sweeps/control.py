"""A sweep's life: start, advance (tell ended trials, queue the next), stop, and what it has found.

A sweep never trains: ``advance`` asks the search for a trial's parameters and
queues its runs (one per fold) through ``jobs.launch_group``, at most one
trial per worker slot at a time (so Optuna learns from finished trials before
it proposes many more); the existing slots execute them. Whoever notices that
a trial's runs have ended calls ``advance``: the worker on its way out
(``after_run``), ``sweep status`` / ``sweep --wait``, the Sweeps page. Every
step is idempotent and guarded by atomic store updates (``claim_trial``,
``end_trial``), so two processes advancing at once neither queue a trial twice
nor tell the search twice. State lives only in the store (and Optuna's
tables in the same database), so a sweep survives a dashboard restart, and
a resumed run's trial is told when the run ends.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from engine import statistics
from engine.jobs import control as jobs
from engine.errors import LabError
from engine.machine.devices import slots
from engine.jobs.executors import concurrency
from engine.runs import ACTIVE_STATUSES, RunRecord, RunStatus, SweepRecord, TrialOutcome, TrialRecord
from engine.store import RunStore, open_store
from engine.datasets import splits
from engine.sweeps import search, study, summary
from engine.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)

# Runs in these statuses have an outcome a trial can be judged by; stopped or interrupted
# runs may still be resumed, so their trial waits (unless the sweep was stopped or pruned it).
_FINAL = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.PRUNED})


def start(spec: SweepSpec | dict[str, Any], *, store: RunStore | None = None, demo_mode: bool | None = None) -> int:
    """Check the spec (and its base config), record the sweep and queue its first trials; returns its id.

    A hosted demo (``demo_mode``, default ``$CONV3D_LAB_DEMO``) runs no sweeps: its trials would be
    queued without an owner, outside the demo's caps.
    """
    from engine import settings, validation
    from engine.hosting import demo

    if settings.demo_mode(demo_mode):
        raise demo.DemoLimitError("This demo does not run sweeps (each queues many runs); launch single runs "
                                  "on the Train page instead.")

    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.from_dict(spec)
    base = spec.base.copy()
    base.data.fold = None
    validation.validate(base)
    slots()
    store = store or open_store()
    sweep_id = store.create_sweep(spec.name, spec.to_dict())
    if spec.method == "optuna":
        study.create(store.url, sweep_id, spec)
    advance(store, sweep_id)
    return sweep_id


def advance(store: RunStore, sweep_id: int) -> list[int]:
    """Tell the search about trials whose runs have ended, queue the next trials; returns the new run ids."""
    sweep = store.get_sweep(sweep_id)
    spec = SweepSpec.from_dict(dict(sweep.spec))
    the_search = search.for_spec(spec, store.url, sweep_id)
    _settle(store, sweep, spec, the_search)
    queued: list[int] = []
    while not sweep.stop_requested:
        trial = store.claim_trial(sweep_id, spec.trials, in_flight=concurrency())
        if trial is None:
            break
        queued.extend(_queue_trial(store, sweep, spec, the_search, trial))
    _mark_finished(store, sweep_id, spec, the_search)
    return queued


def _queue_trial(store: RunStore, sweep: SweepRecord, spec: SweepSpec, the_search, trial: int) -> list[int]:
    params, optuna_trial_number = the_search.ask(trial)
    store.set_trial(sweep.id, trial, params=params, optuna_trial_number=optuna_trial_number)
    config = spec.apply(params)
    config.name = f"{spec.name or sweep.group} t{trial}"
    try:
        return jobs.launch_group(splits.fold_configs(config), group=sweep.group, trial=trial, sweep_id=sweep.id,
                                 store=store)
    except LabError as e:
        # This combination cannot run (e.g. a preset too deep for the volume): the trial fails, the sweep goes on.
        log.warning("sweep %s trial %s cannot run: %s", sweep.id, trial, e)
        record = _trial(store, sweep.id, trial)
        if store.end_trial(sweep.id, trial, TrialOutcome.FAIL, None):
            the_search.tell(record, TrialOutcome.FAIL, None)
        return []


def _trial(store: RunStore, sweep_id: int, trial: int) -> TrialRecord:
    return next(t for t in store.list_trials(sweep_id) if t.trial == trial)


def trial_values(store: RunStore, runs: list[RunRecord], spec: SweepSpec) -> list[float | None]:
    """Each run's best value of the sweep's metric over its epochs (None when it recorded none)."""
    return [summary.best_value(store.epoch_history(run.id), spec.metric, spec.direction) for run in runs]


def _settle(store: RunStore, sweep: SweepRecord, spec: SweepSpec, the_search) -> None:
    runs_by_trial: dict[int, list[RunRecord]] = {}
    for run in store.list_runs(sweep_id=sweep.id):
        runs_by_trial.setdefault(run.trial, []).append(run)
    for record in store.list_trials(sweep.id):
        if record.outcome is not None:
            continue
        runs = runs_by_trial.get(record.trial, [])
        if record.params is None or not runs:
            if sweep.stop_requested and time.time() - record.created_at > 60:
                store.end_trial(sweep.id, record.trial, TrialOutcome.FAIL, None)  # claimed, never queued
            continue
        pruned = any(run.status == RunStatus.PRUNED for run in runs)
        if pruned:
            _prune_siblings(store, runs)
            runs = store.list_runs(ids=[run.id for run in runs])
        if any(run.status.is_active for run in runs):
            continue
        if not (pruned or sweep.stop_requested) and not all(run.status in _FINAL for run in runs):
            continue  # a stopped or interrupted fold may be resumed: wait for it
        values = trial_values(store, runs, spec)
        known = [v for v in values if v is not None]
        mean = float(sum(known) / len(known)) if known else None
        if pruned:
            outcome = TrialOutcome.PRUNED
        elif all(run.status == RunStatus.FINISHED for run in runs) and len(known) == len(runs):
            outcome = TrialOutcome.COMPLETE
        else:
            outcome = TrialOutcome.FAIL
        if store.end_trial(sweep.id, record.trial, outcome, mean):
            try:
                the_search.tell(record, outcome, mean)
            except Exception:  # the store has the outcome; the study catches up on the next tell
                log.exception("telling sweep %s's search about trial %s failed", sweep.id, record.trial)


def _prune_siblings(store: RunStore, runs: list[RunRecord]) -> None:
    """A pruned fold prunes its trial: queued folds leave the queue as pruned, running ones are stopped."""
    for run in runs:
        if run.status == RunStatus.QUEUED and store.transition(
            run.id, RunStatus.PRUNED, from_statuses=[RunStatus.QUEUED], finished_at=time.time()
        ):
            store.log_event(run.id, "pruned while queued: another fold of its trial was pruned")
        elif run.status == RunStatus.RUNNING and not run.stop_requested:
            jobs.stop(run.id, store=store)


def _mark_finished(store: RunStore, sweep_id: int, spec: SweepSpec, the_search) -> None:
    sweep = store.get_sweep(sweep_id)
    if sweep.finished_at is not None:
        return
    trials = store.list_trials(sweep_id)
    active = store.list_runs(statuses=ACTIVE_STATUSES, sweep_id=sweep.id)
    all_told = all(t.outcome is not None for t in trials)
    if (sweep.stop_requested and not active) or (len(trials) >= spec.trials and all_told):
        the_search.catch_up(trials)
        store.update_sweep(sweep_id, finished_at=time.time())


def after_run(store: RunStore, run_id: int) -> list[int]:
    """Called by a worker whose run has ended: advance the run's sweep, if it belongs to one."""
    sweep_id = store.get_run(run_id).sweep_id
    return advance(store, sweep_id) if sweep_id is not None else []


def advance_all(store: RunStore) -> None:
    """Advance every unfinished sweep (after ``jobs.reconcile``: the Sweeps page, ``sweep status``)."""
    for sweep in store.list_sweeps():
        if sweep.finished_at is None:
            try:
                advance(store, sweep.id)
            except LabError:
                log.exception("advancing sweep %s failed", sweep.id)


def stop(sweep_id: int, *, store: RunStore | None = None, wait: bool = False) -> SweepRecord:
    """Queue no more trials and stop the sweep's queued and running runs; their trials end failed."""
    store = store or open_store()
    store.update_sweep(sweep_id, stop_requested=True)
    sweep = store.get_sweep(sweep_id)
    for run in store.list_runs(statuses=ACTIVE_STATUSES, sweep_id=sweep.id):
        jobs.stop(run.id, store=store, wait=wait)
    advance(store, sweep_id)
    return store.get_sweep(sweep_id)


# ------------------------------------------------------------------ reading
def best_config(store: RunStore, sweep_id: int):
    """The best completed trial's configuration as one plain run (no folds), or None before any completed."""
    report = status(store, sweep_id)
    best = report["best"]
    if best is None:
        return None
    spec = SweepSpec.from_dict(dict(store.get_sweep(sweep_id).spec))
    config = spec.apply(best["params"])
    config.data.folds = config.data.fold = None
    config.name = f"{spec.name or f'sweep-{sweep_id}'} best (trial {best['trial']})"
    return config


def status(store: RunStore, sweep_id: int) -> dict[str, Any]:
    """Progress, every trial with its runs and objective, the best trial with its interval, and whether
    the best is really better than the runner-up (a paired test over folds when both have several)."""
    sweep = store.get_sweep(sweep_id)
    spec = SweepSpec.from_dict(dict(sweep.spec))
    runs = store.list_runs(sweep_id=sweep.id)
    trials = []
    for record in store.list_trials(sweep_id):
        members = sorted((r for r in runs if r.trial == record.trial), key=lambda r: (r.config.data.fold or 0, r.id))
        values = trial_values(store, members, spec)
        estimate = statistics.metric_estimate(spec.metric, values)
        trials.append({
            "trial": record.trial, "params": dict(record.params or {}),
            "outcome": record.outcome.value if record.outcome else None, "value": record.value,
            "estimate": estimate.to_dict() if estimate else None, "values": values,
            "run_ids": [r.id for r in members], "statuses": [r.status.value for r in members],
        })
    sign = 1 if spec.direction == "maximize" else -1
    ranked = sorted(
        (t for t in trials if t["outcome"] == TrialOutcome.COMPLETE and t["value"] is not None),
        key=lambda t: -sign * t["value"],
    )
    comparison = None
    if len(ranked) >= 2:
        first, second = ranked[0], ranked[1]
        paired = len(first["values"]) == len(second["values"]) and bool(spec.base.data.folds)
        diff = statistics.difference(first["values"], second["values"], paired=paired)
        if diff is not None:
            comparison = {"best_trial": first["trial"], "runner_up_trial": second["trial"], **diff.to_dict(),
                          "text": diff.describe()}
    counts = {status.value: sum(r.status == status for r in runs) for status in RunStatus}
    return {
        "id": sweep.id, "name": sweep.name, "group": sweep.group, "method": spec.method, "metric": spec.metric,
        "direction": spec.direction, "trials_total": spec.trials, "trials_started": len(trials),
        "trials_done": sum(t["outcome"] is not None for t in trials),
        "trials_pruned": sum(t["outcome"] == TrialOutcome.PRUNED for t in trials),
        "trials_failed": sum(t["outcome"] == TrialOutcome.FAIL for t in trials),
        "trials_running": sum(t["outcome"] is None and any(s == RunStatus.RUNNING for s in t["statuses"])
                              for t in trials),
        "runs": counts, "stop_requested": sweep.stop_requested, "done": sweep.finished_at is not None,
        "created_at": sweep.created_at, "finished_at": sweep.finished_at,
        "space": {path: param.to_dict() for path, param in spec.space.items()},
        "trials": trials, "best": ranked[0] if ranked else None, "comparison": comparison,
    }


def param_importances(store: RunStore, sweep_id: int) -> dict[str, float]:
    """Optuna's fANOVA importance of each searched field for the objective, from the completed trials
    (any method: they are copied into an in-memory study); {} with fewer than 3 completed trials."""
    import optuna

    spec = SweepSpec.from_dict(dict(store.get_sweep(sweep_id).spec))
    done = [t for t in store.list_trials(sweep_id)
            if t.outcome == TrialOutcome.COMPLETE and t.value is not None and math.isfinite(t.value)]
    if len(done) < 3 or len(spec.space) < 2:
        return {path: 1.0 for path in spec.space} if len(done) >= 3 else {}
    distributions = {}
    for path, param in spec.space.items():
        if param.choices is not None:
            distributions[path] = optuna.distributions.CategoricalDistribution(list(param.choices))
        elif param.integer:
            distributions[path] = optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log)
        else:
            distributions[path] = optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    memory = optuna.create_study(direction=spec.direction)
    for record in done:
        memory.add_trial(optuna.trial.create_trial(
            params={path: record.params[path] for path in spec.space}, distributions=distributions, value=record.value,
        ))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return {path: float(value) for path, value in optuna.importance.get_param_importances(memory, evaluator=evaluator).items()}


__all__ = ["advance", "advance_all", "after_run", "best_config", "param_importances", "start", "status", "stop",
           "trial_values"]
