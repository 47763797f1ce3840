"""The Sweeps page in headless Chromium follows a sweep to its end without a reload: its state reads "ended"
and "Stop the sweep" is disabled once the last trial has ended (issue 20, item 9). Trials run in real
worker processes under the fake-worker hook (a made-up curve, no TensorFlow)."""

from __future__ import annotations

import time

import pytest

from conftest import ARTIFACTS, wait_for_app
from engine.machine.devices import SLOTS_ENV
from engine.store import open_store
from engine.sweeps import control
from tests import fake_worker

pytestmark = pytest.mark.e2e

FAKE = {fake_worker.FAKE_WORKER_ENV: "8", fake_worker.FAKE_CURVE_ENV: "1", SLOTS_ENV: "1"}  # slow enough to watch
SPEC = {
    "name": "live", "method": "random", "trials": 2, "metric": "val_loss", "direction": "minimize",
    "base": {"data": {"dataset": "shapes3d", "options": {"num_samples": 24, "size": 12}},
             "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
             "training": {"epochs": 2, "batch_size": 8}},
    "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
}


@pytest.fixture
def dashboard_env():
    return dict(FAKE)


def test_the_page_shows_the_end_of_a_sweep_without_a_reload(dashboard, browser_page, monkeypatch):
    for name, value in FAKE.items():  # the workers control.start spawns from this process
        monkeypatch.setenv(name, value)
    store = open_store()
    sweep_id = control.start(SPEC, store=store)
    page = browser_page
    page.goto(f"{dashboard}/sweeps")
    page.get_by_role("heading", name="Sweeps", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    assert store.get_sweep(sweep_id).finished_at is None, "the sweep ended before the page showed it"
    assert page.get_by_text("in progress").first.is_visible()
    assert page.locator(".st-key-sweeps_stop button").is_enabled()
    deadline = time.monotonic() + 180
    while store.get_sweep(sweep_id).finished_at is None:
        assert time.monotonic() < deadline, control.status(store, sweep_id)["runs"]
        time.sleep(0.5)
    # No page.reload(): the live fragment notices the end and redraws the page.
    page.get_by_text("ended").first.wait_for(timeout=20_000)
    assert not page.get_by_text("in progress").count()
    page.locator(".st-key-sweeps_stop button[disabled]").wait_for(timeout=20_000)
    wait_for_app(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sweeps-ended.png"), full_page=True)
