"""Warm standby workers (engine/jobs/standby.py): they claim queued runs, stay single, go when idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import jobs
from engine.jobs import processes, standby, standby_main
from engine.machine.devices import SLOTS_ENV
from engine.runs import RunStatus
from engine.store import open_store
from tests.jobs.helpers import lab_processes, tiny_config, wait_ended, wait_for
from tests import fake_worker

REPO_ROOT = Path(__file__).resolve().parents[2]


def standby_pids(home) -> list[int]:
    return [pid for pid, command in lab_processes(home) if standby.MODULE in command]


@pytest.fixture
def standby_on(jobs_lab, monkeypatch):
    """Standbys enabled; at teardown (before the orphan guard) every standby of the lab is ended.

    A worker starts a fresh standby when its run ends, so this keeps ending them until none is left.
    """
    monkeypatch.setenv(standby.STANDBY_ENV, "1")
    yield jobs_lab
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        others = [pid for pid, command in lab_processes(jobs_lab) if standby.MODULE not in command]
        for pid in standby_pids(jobs_lab):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        processes.reap_children()
        if not lab_processes(jobs_lab):
            break
        time.sleep(0.3 if others else 0.1)


def _fake(monkeypatch, seconds: float = 0.5) -> None:
    # The standby honours the fake-worker hook: no TensorFlow, the claiming and scheduling are real.
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, str(seconds))


def test_ensure_standby_is_idempotent(standby_on, store, monkeypatch):
    _fake(monkeypatch)
    first = jobs.ensure_standby(store)
    assert first and processes.pid_alive(first, expect=standby.command_marker("cpu"))
    assert jobs.ensure_standby(store) == first
    assert jobs.ensure_standby() == first
    wait_for(lambda: standby_pids(standby_on) == [first], 10, "one standby process")
    assert standby.pidfile_path("cpu").read_text().strip() == str(first)


def test_standby_off(standby_on, store, monkeypatch):
    monkeypatch.setenv(standby.STANDBY_ENV, "0")
    assert jobs.ensure_standby(store) is None
    assert not standby.pidfile_path("cpu").exists()
    assert standby_pids(standby_on) == []


def test_idle_standby_leaves(standby_on, store, monkeypatch):
    _fake(monkeypatch)
    monkeypatch.setenv(standby_main.IDLE_ENV, "0.5")
    pid = jobs.ensure_standby(store)
    wait_for(lambda: not processes.pid_alive(pid), 15, "the idle standby to leave")
    assert not standby.pidfile_path("cpu").exists()
    assert "idle for 0.5 s; leaving" in standby.log_path("cpu").read_text()
    # A new call starts a new one.
    assert jobs.ensure_standby(store) not in (None, pid)


def test_standby_claims_a_queued_run_and_finishes_it(standby_on, store, monkeypatch):
    _fake(monkeypatch)
    pid = jobs.ensure_standby(store)
    run_id = jobs.launch(tiny_config(), store=store)
    run = wait_ended(store, run_id, 30)
    assert run.status == RunStatus.FINISHED
    assert run.pid == pid  # the standby itself was the worker
    messages = [event["message"] for event in store.get_events(run_id)]
    assert sum(message.startswith("started on slot cpu (warm standby") for message in messages) == 1, messages
    assert f"warm standby (pid {pid}) claimed run {run_id}" in jobs.log_tail(run_id, 100)
    # One run per standby: it exits, and the worker's hand-over started a fresh one.
    wait_for(lambda: not processes.pid_alive(pid), 15, "the standby-turned-worker to exit")
    fresh = wait_for(lambda: standby.live_standby("cpu"), 15, "a fresh standby")
    assert fresh != pid


def test_schedule_leaves_the_slot_to_a_live_standby(standby_on, store, monkeypatch):
    _fake(monkeypatch)
    pid = jobs.ensure_standby(store)
    run_id = store.create_run(tiny_config())
    assert jobs.schedule(store) == []  # not started cold: the standby claims it
    assert wait_ended(store, run_id, 30).pid == pid


def test_stop_and_reconcile_know_a_standby_worker(standby_on, store, monkeypatch):
    _fake(monkeypatch, seconds=60)
    pid = jobs.ensure_standby(store)
    run_id = jobs.launch(tiny_config(), store=store)
    wait_for(lambda: store.get_run(run_id).pid == pid, 30, "the standby to claim the run")
    assert jobs.reconcile(store) == []  # alive: not interrupted although its command line names no run
    assert jobs.stop(run_id, store=store, wait=True, grace_s=5) == "stopped"


def test_no_run_starts_twice_when_schedule_and_standby_race(standby_on, store, monkeypatch):
    """Ten launches at once on one slot while a standby waits: each run is claimed and held once."""
    _fake(monkeypatch, seconds=0.3)
    monkeypatch.setenv(SLOTS_ENV, "1")
    jobs.ensure_standby(store)
    config_path = standby_on / "config.json"
    config_path.write_text(tiny_config().to_json())

    most_running = [0]
    sampling = threading.Event()

    def sample() -> None:
        sampler_store = open_store()
        while not sampling.is_set():
            most_running[0] = max(most_running[0], len(sampler_store.list_runs(statuses=[RunStatus.RUNNING])))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    launched = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("launch_at_once.py")), str(config_path), "10"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert launched.returncode == 0, launched.stderr
    run_ids = sorted(json.loads(line)["run_id"] for line in launched.stdout.splitlines())
    assert len(run_ids) == 10
    runs = [wait_ended(store, run_id, 120) for run_id in run_ids]
    sampling.set()
    sampler.join()
    assert [run.status for run in runs] == [RunStatus.FINISHED] * 10
    assert most_running[0] <= 1
    by_standby = 0
    for run in runs:
        messages = [event["message"] for event in store.get_events(run.id)]
        assert sum("holding the run" in message for message in messages) == 1, messages
        assert sum(message.startswith("started on slot") for message in messages) == 1, messages
        by_standby += any("warm standby" in message for message in messages)
    assert by_standby >= 1
    edges = sorted([(run.started_at, 1) for run in runs] + [(run.finished_at, -1) for run in runs])
    assert max(sum(change for _, change in edges[: index + 1]) for index in range(len(edges))) <= 1


def test_a_real_run_on_a_warm_standby(standby_on, store, monkeypatch):
    """End to end with TensorFlow: the standby imports it, warms up, claims a tiny run and trains it,
    with the same numbers as a cold worker (its warm-up fit leaves no trace in a seeded run)."""
    config = tiny_config(epochs=2).to_dict()
    config["data"]["options"] = {"num_samples": 32, "size": 12}
    monkeypatch.setenv(standby.STANDBY_ENV, "0")
    cold_id = jobs.launch(config, store=store)
    cold = wait_ended(store, cold_id, 150)
    assert cold.status == RunStatus.FINISHED and cold.slot == "cpu", cold.error
    wait_for(lambda: not lab_processes(standby_on), 20, "the cold worker to exit")
    monkeypatch.setenv(standby.STANDBY_ENV, "1")

    pid = jobs.ensure_standby(store)
    wait_for(lambda: standby.warm_standby("cpu") == pid, 150, "the standby to warm up")
    launched_at = time.time()
    run_id = jobs.launch(config, store=store)
    run = wait_ended(store, run_id, 150)
    assert run.status == RunStatus.FINISHED, run.error
    assert run.pid == pid and run.epochs_done == 2
    first_epoch = min(row["wall_time"] for row in store.get_metrics(run_id, kind="epoch"))
    print(f"\nwarm standby: launch -> first epoch recorded {first_epoch - launched_at:.1f} s")
    log = jobs.log_tail(run_id, 200)
    assert f"claimed run {run_id}" in log and "Traceback" not in log
    cold_history, warm_history = store.epoch_history(cold_id), store.epoch_history(run_id)
    assert len(warm_history) == 2
    for cold_epoch, warm_epoch in zip(cold_history, warm_history, strict=True):
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert warm_epoch[name] == pytest.approx(cold_epoch[name], rel=1e-6, abs=1e-7), (name, cold_epoch)


def test_a_suspended_standby_loses_its_slot_to_a_cold_worker(standby_on, store, monkeypatch):
    """SIGSTOP of the idle standby used to leave a launched run queued for a minute: schedule left the
    slot to a standby that could not claim. Now the standby is retired and a cold worker starts."""
    _fake(monkeypatch)
    pid = jobs.ensure_standby(store)
    wait_for(lambda: standby.warm_standby("cpu") == pid, 30, "the standby to be ready")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        run_id = jobs.launch(tiny_config(), store=store)
        run = wait_ended(store, run_id, 30)
        assert run.status == RunStatus.FINISHED and run.pid != pid  # a cold worker trained it
        print(f"\nrun finished {time.monotonic() - started:.1f} s after the launch, with the standby suspended")
        messages = [event["message"] for event in store.get_events(run_id)]
        assert any(f"the warm standby (pid {pid}) is suspended" in message for message in messages), messages
        wait_for(lambda: not processes.pid_alive(pid), 10, "the suspended standby to be ended")
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_a_warm_standby_that_does_not_claim_in_time_is_retired(standby_on, store, monkeypatch):
    _fake(monkeypatch)
    pid = jobs.ensure_standby(store)
    wait_for(lambda: standby.warm_standby("cpu") == pid, 30, "the standby to be ready")
    os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGCONT)  # alive and running, as a hung process would look
    monkeypatch.setattr(processes, "is_suspended", lambda _pid: False)
    run_id = store.create_run(tiny_config())
    # Queued long enough ago that a polling standby would have claimed it.
    store.update_run(run_id, queued_at=time.time() - 10 * jobs.control.STANDBY_CLAIM_GRACE_S)
    os.kill(pid, signal.SIGSTOP)
    try:
        started = jobs.schedule(store)
        assert started == [run_id]
        assert wait_ended(store, run_id, 30).status == RunStatus.FINISHED
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_a_run_waiting_for_a_busy_slot_never_counts_against_the_standby(standby_on, store, monkeypatch):
    """Folds queued behind the one training on the single slot waited 40 s, and the standby was retired
    with "has not claimed a run queued 40 s ago" when the slot came free. The wait for a busy slot is not
    the standby's: it keeps the slot, and claims the next fold once the slot is free."""
    _fake(monkeypatch)
    pid = jobs.ensure_standby(store)
    wait_for(lambda: standby.warm_standby("cpu") == pid, 30, "the standby to be ready")
    # A fold training on the only slot (another host with a fresh heartbeat: nothing here checks its pid).
    busy = store.create_run(tiny_config())
    store.transition(busy, RunStatus.RUNNING, from_statuses=[RunStatus.QUEUED], slot="cpu", host="another-host",
                     heartbeat_at=time.time(), started_at=time.time() - 50)
    waiting = store.create_run(tiny_config())
    store.update_run(waiting, queued_at=time.time() - 10 * jobs.control.STANDBY_CLAIM_GRACE_S)
    assert jobs.schedule(store) == []  # the slot is busy: nothing starts, and the standby stays
    assert standby.warm_standby("cpu") == pid
    # The busy fold ends now; its worker's schedule leaves the next fold to the standby.
    store.transition(busy, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], finished_at=time.time())
    assert jobs.schedule(store) == []
    run = wait_ended(store, waiting, 30)
    assert run.status == RunStatus.FINISHED and run.pid == pid  # the warm standby trained it
    messages = [event["message"] for event in store.get_events(waiting)]
    assert not any("has not claimed" in message for message in messages), messages
