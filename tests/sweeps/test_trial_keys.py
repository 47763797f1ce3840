"""A sweep run's pruning check and its trial's tell find the Optuna trial through public keys only: the
run's ``sweep_id`` column (not its group string) and Optuna's trial ``number``. In-process, no workers."""

from __future__ import annotations

import optuna

from engine.config import RunConfig
from engine.runs import TrialOutcome
from engine.store import open_store
from engine.sweeps import pruning, search, study
from engine.sweeps.spec import SweepSpec

SPEC = {"method": "optuna", "trials": 4, "metric": "val_accuracy", "direction": "maximize",
        "space": {"model.dropout_rate": {"low": 0.0, "high": 0.5}}}


def test_a_trial_run_reports_to_its_optuna_trial_by_number_and_its_tell_ends_it(lab_home):
    store = open_store()
    spec = SweepSpec.from_dict(SPEC)
    other = store.create_sweep("other", spec.to_dict())  # its trials take the first storage ids
    study.create(store.url, other, spec)
    study.load(store.url, other, spec).ask()
    sweep_id = store.create_sweep("lr", spec.to_dict())
    study.create(store.url, sweep_id, spec)
    the_search = search.for_spec(spec, store.url, sweep_id)
    trial = store.claim_trial(sweep_id, trials=4, in_flight=4)
    params, number = the_search.ask(trial)
    assert number == 0 and set(params) == {"model.dropout_rate"}
    store.set_trial(sweep_id, trial, params=params, optuna_trial_number=number)
    config = RunConfig.from_dict({"data": {"dataset": "shapes3d"}, "training": {"epochs": 3}})
    [run_id] = store.create_runs([config], group=f"sweep-{sweep_id}", trial=trial, sweep_id=sweep_id)

    pruner = pruning.pruner_for(store, store.get_run(run_id))
    assert pruner is not None and pruner.report(1, {"val_accuracy": 0.75}) is False  # no completed trials yet
    frozen = study.frozen_trial(study.load(store.url, sweep_id, spec), number)
    assert frozen.intermediate_values == {1: 0.75} and frozen.state == optuna.trial.TrialState.RUNNING

    [record] = store.list_trials(sweep_id)
    the_search.tell(record, TrialOutcome.COMPLETE, 0.75)
    the_search.tell(record, TrialOutcome.COMPLETE, 0.75)  # a second tell (a retry after a crash) is a no-op
    frozen = study.frozen_trial(study.load(store.url, sweep_id, spec), number)
    assert frozen.state == optuna.trial.TrialState.COMPLETE and frozen.value == 0.75

    # The group string alone no longer makes a run a sweep's: without its sweep_id there is no pruning check.
    [plain] = store.create_runs([config], group=f"sweep-{sweep_id}", trial=trial)
    assert pruning.pruner_for(store, store.get_run(plain)) is None
