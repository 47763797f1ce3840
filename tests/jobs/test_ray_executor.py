"""The Ray executor (``CONV3D_LAB_EXECUTOR=ray``) on a local Ray instance (``ray.init(num_cpus=2)``):
a 4-trial x 2-fold sweep through it ends with all eight runs in the store, a stop goes through Ray, and a
run whose actor is killed is reconciled as ``interrupted`` and resumes to ``finished``.

Skipped, with the reason, where Ray is not installed (requirements-cluster.txt). Ray's start-up is heavy
(about 10 s on a busy 2-core machine), so one instance serves the whole module; the sweep (eight actors,
about a minute here) is marked ``slow``, the stop and the kill-and-resume run by default.
"""

from __future__ import annotations

import time

import pytest

from engine import jobs
from engine.jobs.executors import EXECUTOR_ENV
from engine.jobs.executors.ray_executor import MAX_CONCURRENT_ENV, actor_name, namespace
from engine.runs import RunStatus
from engine.sweeps import control
from tests import fake_worker
from tests.jobs.helpers import WORKER_TIMEOUT_S, tiny_config, wait_ended, wait_for

ray = pytest.importorskip("ray", reason="Ray is not installed (python -m pip install -r requirements-cluster.txt)")

MAX_CONCURRENT = 2


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def on_ray(ray_address, jobs_lab, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "ray")
    monkeypatch.setenv("RAY_ADDRESS", ray_address)
    monkeypatch.setenv(MAX_CONCURRENT_ENV, str(MAX_CONCURRENT))
    yield
    wait_for(lambda: not _lab_actors(), 30, "the lab's Ray actors to exit")


def _lab_actors() -> list:
    """The live actors of this module's labs (a dead or exited actor's name is free again)."""
    from ray.util import list_named_actors

    return [entry for entry in list_named_actors(all_namespaces=True) if entry["namespace"].startswith("conv3d-lab-")]


def _events(store, run_id: int) -> list[str]:
    return [event["message"] for event in store.get_events(run_id)]


@pytest.mark.slow  # about a minute here: eight actors, each a new Ray worker process (run with -m slow)
def test_a_four_trial_two_fold_sweep_runs_all_eight_runs_on_ray(on_ray, store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.3")  # the real claims, actors and workers; no TensorFlow
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    base = tiny_config(epochs=1)
    base.data.folds = 2
    sweep_id = control.start({
        "base": base.to_dict(), "method": "random", "trials": 4, "metric": "val_accuracy", "direction": "maximize",
        "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}},
    }, store=store)
    most = 0
    deadline = time.monotonic() + 240
    while store.get_sweep(sweep_id).finished_at is None:
        running = store.list_runs(statuses=[RunStatus.RUNNING])
        most = max(most, len(running))
        assert time.monotonic() < deadline, f"the sweep did not finish: {control.status(store, sweep_id)['runs']}"
        jobs.reconcile(store)
        control.advance_all(store)
        time.sleep(0.2)
    runs = store.list_runs(group=store.get_sweep(sweep_id).group)
    assert len(runs) == 8 and {run.status for run in runs} == {RunStatus.FINISHED}, [(r.id, r.status) for r in runs]
    assert sorted((run.trial, run.config.data.fold) for run in runs) == [(t, f) for t in range(4) for f in (0, 1)]
    assert all(run.slot.startswith("ray-") and run.epochs_done == 1 for run in runs)
    assert all(any(message.startswith("started on Ray as actor") for message in _events(store, run.id)) for run in runs)
    assert 1 <= most <= MAX_CONCURRENT
    assert all(trial.outcome is not None and trial.value is not None for trial in store.list_trials(sweep_id))


def test_a_stop_that_the_worker_does_not_finish_cancels_its_ray_actor(on_ray, store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "120")
    run_id = jobs.launch(tiny_config(), store=store)
    wait_for(lambda: any("holding the run" in message for message in _events(store, run_id)), 60, "the worker")
    assert jobs.escalate_stop(store, run_id, grace_s=0) == RunStatus.STOPPED
    assert "its Ray actor was cancelled" in store.get_run(run_id).error


def test_a_run_whose_ray_actor_is_killed_is_interrupted_and_resumes_to_finished(on_ray, store, monkeypatch):
    monkeypatch.setenv(fake_worker.BATCH_DELAY_ENV, "0.5")  # about 2 s per epoch: time to kill it mid-run
    run_id = jobs.launch(tiny_config(epochs=3), store=store)
    wait_for(lambda: store.get_run(run_id).epochs_done >= 1, WORKER_TIMEOUT_S, "one epoch on Ray")
    assert store.get_run(run_id).status == RunStatus.RUNNING, "the run ended before the test could kill it"
    ray.kill(ray.get_actor(actor_name(run_id), namespace=namespace(store.url)), no_restart=True)  # a lost node

    wait_for(lambda: jobs.reconcile(store) == [run_id], 30, "reconcile to notice the lost actor")
    run = store.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and f"Ray actor {actor_name(run_id)} is gone" in run.error

    monkeypatch.delenv(fake_worker.BATCH_DELAY_ENV)
    assert jobs.resume(run_id, store=store) == run_id
    run = wait_ended(store, run_id)
    assert run.status == RunStatus.FINISHED, run.error
    assert [row["epoch"] for row in store.epoch_history(run_id)] == [1, 2, 3]
    assert any(message.startswith("resuming after epoch") for message in _events(store, run_id))
