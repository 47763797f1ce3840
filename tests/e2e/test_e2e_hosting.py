"""A hosted demo in headless Chromium: whose runs a browser may change, across reloads and browsers.

Two browser contexts are two browsers (separate cookie jars). Browser A launches the sample run
from Home, reloads (a new Streamlit session) and still has the run's Stop button, because its
identity is kept in a cookie (ui/access.py); browser B sees the same run read-only; A asking for
more epochs than the cap gets the sentence naming it and nothing is queued. Then the password
gate, configured by a secrets file given to the server (``STREAMLIT_SECRETS_FILES``, the
environment form of ``--secrets.files``, so the repository's .streamlit/ is not touched).
Screenshots: test-artifacts/hosting-*.png.
"""

from __future__ import annotations

import re
import time

import pytest

from engine.jobs import standby
from engine.runs import RunStatus
from tests.e2e.conftest import ARTIFACTS, wait_for_app
from tests.jobs.helpers import wait_for
from tests import fake_worker
from ui import access

pytestmark = pytest.mark.e2e

PASSWORD = "a long test phrase"
# The demo's workers hold their run this long without training (test hook: no TensorFlow, and a
# stop is noticed within 0.05 s), so the run is active while the browsers look at it; who may
# change it does not depend on what it trains.
HOLD_S = 300
# Seconds for a run to stop once Stop is clicked (it may still be starting TensorFlow).
STOP_TIMEOUT_S = 60
VIEWPORT = {"width": 1400, "height": 1100}


@pytest.fixture
def dashboard_env(request, tmp_path) -> dict[str, str]:
    """A demo server (``demo``) or a demo behind ``lab_password`` read from a secrets file (``password``)."""
    env = {standby.STANDBY_ENV: "0", fake_worker.FAKE_WORKER_ENV: str(HOLD_S)}
    if getattr(request, "param", "demo") == "password":
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(f'demo = true\nlab_password = "{PASSWORD}"\n')
        env["STREAMLIT_SECRETS_FILES"] = str(secrets_file)
    else:
        env["CONV3D_LAB_DEMO"] = "1"
    return env


def _store():
    from engine.store import open_store

    return open_store()


def _open(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=60_000)
    wait_for_app(page)


def _screenshot(page, name: str, height: int | None = None) -> None:
    """The page once its elements have loaded (no placeholder left), ``height`` pixels tall if given
    (Streamlit scrolls inside its own container, so a tall viewport is how a long page fits)."""
    wait_for_app(page)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000)
    if height:
        page.set_viewport_size({**VIEWPORT, "height": height})
        page.wait_for_timeout(500)
    path = ARTIFACTS / f"hosting-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    page.set_viewport_size(VIEWPORT)


def _looks_right(page) -> None:
    """No exception or error box, and the demo banner is shown."""
    assert page.locator("[data-testid='stException']").count() == 0
    page.get_by_text("This is a shared demo: runs are limited to").wait_for()


def _stop_button(page, run_id: int):
    return page.locator(f".st-key-runs_stop_{run_id} button")


def _open_run(page, dashboard: str, run_id: int) -> None:
    """The Runs page with ``run_id`` selected, loaded afresh (a new Streamlit session)."""
    _open(page, f"{dashboard}/runs?runs={run_id}", "Runs")
    page.locator(f".st-key-runs_panel_{run_id}").wait_for(timeout=30_000)
    wait_for_app(page)


def _launch_demo_from_home(page) -> int:
    page.locator(".st-key-home_demo button").click()
    page.wait_for_url(re.compile(r"runs=\d+"), timeout=60_000)
    return int(re.search(r"runs=(\d+)", page.url).group(1))


def _cookie(context) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == access.BROWSER_COOKIE), None)


def _step(started: float, what: str) -> None:
    print(f"  {time.monotonic() - started:5.1f} s  {what}")


def _stop(page, run_id: int) -> None:
    _stop_button(page, run_id).click()
    wait_for(lambda: _store().get_run(run_id).status.is_ended, STOP_TIMEOUT_S, f"run {run_id} to stop")
    assert _store().get_run(run_id).status == RunStatus.STOPPED


@pytest.mark.parametrize("dashboard_env", ["demo"], indirect=True)
def test_demo_runs_stay_yours_after_a_reload_and_read_only_to_another_browser(dashboard, browser_page):
    started = time.monotonic()
    page = browser_page
    page.set_viewport_size(VIEWPORT)
    _open(page, dashboard, "Conv3D Lab")
    _looks_right(page)
    token = _cookie(page.context)
    assert token and access.browser_token(token) == token, f"no identity cookie: {page.context.cookies()}"
    run_id = _launch_demo_from_home(page)
    _stop_button(page, run_id).wait_for(timeout=30_000)
    assert _store().get_run(run_id).owner == access.browser_identity(token)  # a hash, not the token
    _screenshot(page, "a-launched")
    _step(started, "A launched the sample run")

    # A reload is a new Streamlit session; the cookie brings the identity back.
    page.reload()
    page.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    _stop_button(page, run_id).wait_for(timeout=30_000)
    assert _store().get_run(run_id).status.is_active, "the run ended before the reload was checked"
    assert _cookie(page.context) == token
    _looks_right(page)
    _screenshot(page, "a-reloaded")
    _step(started, "A reloaded: Stop is still there")

    # Another browser: the same run, no Stop, and a sentence saying why.
    other = page.context.browser.new_context(viewport=VIEWPORT).new_page()
    try:
        _open_run(other, dashboard, run_id)
        assert _stop_button(other, run_id).count() == 0
        assert _cookie(other.context) not in (None, token)
        other.locator(f".st-key-runs_panel_{run_id}").get_by_text("Tags, notes, archive, delete").click()
        other.get_by_text(f"Run #{run_id} is read-only here: another visitor launched it.").wait_for()
        _looks_right(other)
        _screenshot(other, "b-read-only")
        _step(started, "B sees it read-only")
    finally:
        other.context.close()

    # Its owner stops it; a session without the cookie (cleared) may not resume it.
    _stop(page, run_id)
    page.locator(f".st-key-runs_resume_{run_id} button").wait_for(timeout=30_000)
    page.context.clear_cookies()
    _open_run(page, dashboard, run_id)
    assert page.locator(f".st-key-runs_resume_{run_id} button").count() == 0
    _step(started, "A stopped it; without the cookie no Resume")

    # More epochs than the cap: the sentence naming it, and nothing queued.
    before = len(_store().list_runs())
    _open(page, f"{dashboard}/train", "Train")
    _step(started, "Train page open")
    field = page.locator(".st-key-train_epochs input")
    field.fill("25")
    field.press("Enter")
    wait_for_app(page)
    page.locator(".st-key-train_launch button").click()
    page.get_by_text("This demo trains at most 20 epochs per run; lower the epochs from 25 to 20 or fewer.").wait_for(
        timeout=120_000)
    wait_for_app(page)
    assert len(_store().list_runs()) == before
    assert "runs=" not in page.url
    _looks_right(page)
    _screenshot(page, "a-over-the-cap", height=3000)
    print(f"demo hosting test: {time.monotonic() - started:.1f} s after the server was up")


@pytest.mark.parametrize("dashboard_env", ["password"], indirect=True)
def test_a_locked_browser_cannot_launch_and_after_unlocking_keeps_its_runs(dashboard, browser_page):
    started = time.monotonic()
    page = browser_page
    page.set_viewport_size(VIEWPORT)
    _open(page, dashboard, "Conv3D Lab")
    _looks_right(page)
    page.locator(".st-key-home_demo button").click()
    page.get_by_text("Unlock the lab with its password (sidebar) to launch").wait_for()
    wait_for_app(page)
    assert _store().list_runs() == []
    _screenshot(page, "locked")
    _step(started, "locked: refused")

    def unlock() -> None:
        page.locator(".st-key-access_password input").fill(PASSWORD)
        page.locator(".st-key-access_unlock button").click()
        page.get_by_text("Unlocked: you can launch and change runs.").wait_for()
        wait_for_app(page)

    unlock()
    run_id = _launch_demo_from_home(page)
    _stop_button(page, run_id).wait_for(timeout=30_000)
    _looks_right(page)
    _screenshot(page, "unlocked-launched")
    _step(started, "unlocked and launched")

    # After a reload the session is locked again (the password is asked once per session), and once
    # unlocked the run is this browser's again.
    page.reload()
    page.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(f".st-key-runs_panel_{run_id}").wait_for()
    assert _stop_button(page, run_id).count() == 0
    unlock()
    _stop_button(page, run_id).wait_for(timeout=30_000)
    _screenshot(page, "unlocked-after-reload")
    _step(started, "reloaded, unlocked again: Stop")
    _stop(page, run_id)
    print(f"password hosting test: {time.monotonic() - started:.1f} s after the server was up")
