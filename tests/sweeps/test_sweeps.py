"""Sweeps: trials are queued runs that the slots execute; ask / tell, pruning, stop, resume.

Workers run under the fake-worker hook with a made-up curve (no TensorFlow), so
the queue, the claims, Optuna's study in the lab database and the pruning check
are the real ones on a 2-core machine. tests/sweeps/test_sweep_training.py
trains a real tiny sweep.
"""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest

from engine import jobs
from engine.errors import ConfigError
from engine.jobs import processes
from engine.machine.devices import SLOTS_ENV
from engine.runs import ACTIVE_STATUSES, RunStatus, TrialOutcome
from engine.sweeps import control, study
from engine.sweeps.spec import SweepSpec
from tests.jobs.helpers import tiny_config, wait_for
from tests import fake_worker
from tests.store.postgres import on_both_stores

SWEEP_TIMEOUT_S = 120


def _spec(method="optuna", trials=6, epochs=4, folds=None, **space):
    base = tiny_config(epochs=epochs)
    base.data.folds = folds
    return {
        "base": base.to_dict(), "method": method, "trials": trials, "metric": "val_accuracy",
        "direction": "maximize",
        "space": space or {"training.learning_rate": {"low": 1e-5, "high": 0.5, "log": True},
                           "model.dropout_rate": {"low": 0.0, "high": 0.6}},
    }


def _run_to_the_end(store, sweep_id, slots: int, timeout_s=SWEEP_TIMEOUT_S) -> int:
    """Poll until the sweep has finished (advancing it as the page does); the most runs ever running at once."""
    most = 0
    deadline = time.monotonic() + timeout_s
    while store.get_sweep(sweep_id).finished_at is None:
        running = store.list_runs(statuses=[RunStatus.RUNNING])
        most = max(most, len(running))
        assert len(running) <= slots
        if time.monotonic() > deadline:
            pytest.fail(f"sweep {sweep_id} did not finish in {timeout_s} s: {control.status(store, sweep_id)['runs']}")
        jobs.reconcile(store)
        control.advance_all(store)
        time.sleep(0.1)
    return most


@pytest.fixture
def fake_curves(monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.4")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")


@on_both_stores
def test_six_trial_optuna_sweep_with_pruning_runs_on_the_slots(store, fake_curves, monkeypatch):
    monkeypatch.setenv(SLOTS_ENV, "2")
    sweep_id = control.start(_spec(trials=6), store=store)
    most = _run_to_the_end(store, sweep_id, slots=2)
    assert most == 2  # both slots used, never more

    report = control.status(store, sweep_id)
    assert report["trials_started"] == report["trials_done"] == 6 and report["done"]
    runs = store.list_runs(sweep_id=sweep_id)
    assert sorted(run.trial for run in runs) == list(range(6))  # every trial recorded as a run of the sweep
    assert {(run.sweep_id, run.group) for run in runs} == {(sweep_id, f"sweep-{sweep_id}")}  # the group is kept
    pruned = [run for run in runs if run.status == RunStatus.PRUNED]
    assert pruned, "no trial was pruned"
    assert all(0 < run.epochs_done < 4 and len(store.epoch_history(run.id)) == run.epochs_done for run in pruned)
    assert report["trials_pruned"] == len(pruned)
    best = report["best"]
    assert best["value"] == max(t["value"] for t in report["trials"] if t["outcome"] == "complete")

    # The study lives in the lab's database (same SQLite file) and agrees with the store.
    the_study = optuna.load_study(study_name=study.study_name(sweep_id), storage=store.url)
    states = sorted(t.state.name for t in the_study.trials)
    assert states.count("PRUNED") == len(pruned) and states.count("COMPLETE") == 6 - len(pruned)
    assert the_study.best_value == pytest.approx(best["value"])
    assert set(control.param_importances(store, sweep_id)) <= {"training.learning_rate", "model.dropout_rate"}

    config = control.best_config(store, sweep_id)
    assert config.training.learning_rate == best["params"]["training.learning_rate"]
    assert jobs.launch(config) and store.list_runs(limit=1)[0].group is None


def test_grid_sweep_with_folds_compares_the_best_two_over_the_same_folds(store, fake_curves):
    spec = _spec(method="grid", trials=None, epochs=2, folds=2,
                 **{"training.learning_rate": {"values": [3e-3, 1e-4]}})
    del spec["trials"]  # a grid runs every combination
    sweep_id = control.start(spec, store=store)
    _run_to_the_end(store, sweep_id, slots=1)
    report = control.status(store, sweep_id)
    assert [t["params"]["training.learning_rate"] for t in report["trials"]] == [3e-3, 1e-4]
    assert all(len(t["run_ids"]) == 2 for t in report["trials"])  # one run per fold
    assert all(t["estimate"]["n"] == 2 for t in report["trials"])  # the objective is the mean over folds
    assert report["best"]["trial"] == 0
    comparison = report["comparison"]
    assert comparison["paired"] and comparison["difference"] > 0 and "paired t-test" in comparison["text"]


def test_random_sweep_and_spec_mistakes(store, fake_curves):
    sweep_id = control.start(_spec(method="random", trials=3, epochs=1), store=store)
    _run_to_the_end(store, sweep_id, slots=1)
    assert [t.outcome for t in store.list_trials(sweep_id)] == [TrialOutcome.COMPLETE] * 3
    with pytest.raises(ConfigError, match="not a config field.*a grid needs a list"):
        SweepSpec.from_dict({"method": "grid", "trials": 2, "space": {"training.lr": {"low": 1, "high": 2},
                                                                       "model.dropout_rate": {"low": 0, "high": 1}}})
    with pytest.raises(ConfigError, match="outside training.learning_rate's range"):
        SweepSpec.from_dict({"trials": 2, "space": {"training.learning_rate": {"low": 0.1, "high": 5}}})


@on_both_stores
def test_stopping_a_sweep_stops_its_trials_and_queues_no_more(store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "60")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    monkeypatch.setenv(SLOTS_ENV, "2")
    sweep_id = control.start(_spec(trials=6, epochs=2, folds=2), store=store)
    wait_for(lambda: len(store.list_runs(statuses=[RunStatus.RUNNING], sweep_id=sweep_id)) == 2, 30,
             "two running trials")
    assert len(store.list_runs(sweep_id=sweep_id)) == 4  # two trials (one per slot), two folds each

    control.stop(sweep_id, store=store, wait=True)
    runs = store.list_runs(sweep_id=sweep_id)
    assert len(runs) == 4 and not [r for r in runs if r.status in ACTIVE_STATUSES]
    assert {r.status for r in runs} == {RunStatus.STOPPED}
    # Resuming the lab: reconcile and advance change nothing; the store and the study agree.
    assert jobs.reconcile(store) == []
    control.advance_all(store)
    assert len(store.list_runs(sweep_id=sweep_id)) == 4
    sweep = store.get_sweep(sweep_id)
    assert sweep.stop_requested and sweep.finished_at is not None
    assert [t.outcome for t in store.list_trials(sweep_id)] == [TrialOutcome.FAIL] * 2
    the_study = optuna.load_study(study_name=study.study_name(sweep_id), storage=store.url)
    # None left running (the worker that ends a trial tells the study a moment after its run stopped).
    wait_for(lambda: [t.state.name for t in the_study.get_trials()] == ["FAIL", "FAIL"], 10, "the study's trials to fail")


@on_both_stores
def test_a_sweep_waits_for_an_interrupted_trial_and_continues_when_it_is_resumed(store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "60")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    sweep_id = control.start(_spec(method="random", trials=2, epochs=2), store=store)
    [first] = store.list_runs(sweep_id=sweep_id)
    pid = wait_for(lambda: store.get_run(first.id).pid, 30, "the worker's pid")
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not processes.pid_alive(pid), 10, "the worker to die")
    # The dashboard restarts: reconcile marks the run interrupted; the sweep waits for it, queueing nothing.
    assert jobs.reconcile(store) == [first.id]
    control.advance_all(store)
    assert [r.id for r in store.list_runs(sweep_id=sweep_id)] == [first.id]
    assert store.list_trials(sweep_id)[0].outcome is None

    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.3")
    jobs.resume(first.id, store=store)
    _run_to_the_end(store, sweep_id, slots=1)
    assert [t.outcome for t in store.list_trials(sweep_id)] == [TrialOutcome.COMPLETE] * 2
