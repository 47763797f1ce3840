"""The Apply action and the fix's verdict on the real Inspect page in headless Chromium, at 1280 px.

A planted overfitting run (stored history and predictions); Apply is pressed in the browser and queues three
pairs, which the server's workers hold under the fake-worker hook (no TensorFlow); the Fixes panel then shows
the paired difference with its interval. Saves test-artifacts/fix-apply.png and test-artifacts/fix-result.png.
"""

from __future__ import annotations

import pytest

from conftest import ARTIFACTS, set_number, wait_for_app

pytestmark = pytest.mark.e2e
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"
FAKE = {"CONV3D_LAB_FAKE_WORKER_S": "0.2", "CONV3D_LAB_FAKE_CURVE": "1", "CONV3D_LAB_STANDBY": "0"}


@pytest.mark.parametrize("dashboard_env", [FAKE])
def test_apply_a_fix_and_read_its_verdict(lab_home, dashboard, browser_page, dashboard_env):
    from engine.remedies import pairing
    from engine.store import open_store
    from tests.jobs.helpers import wait_ended
    from tests.remedies.test_fix_page import overfitting_run

    store = open_store()
    run_id = overfitting_run(store)
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.goto(f"{dashboard}/inspect?run={run_id}")
    panel = page.locator(".st-key-inspect_doctor")
    panel.wait_for(timeout=60_000)
    wait_for_app(page)
    expander = panel.locator("[data-testid='stExpander']").filter(has_text="Overfitting")
    apply_box = panel.locator("[class*='st-key-inspect_doctor_action_'][class*='_overfitting_apply']")
    apply_box.wait_for(timeout=90_000)
    apply = apply_box.locator("button")
    key = next(name for name in apply_box.get_attribute("class").split() if name.startswith("st-key-"))
    prefix = key.removeprefix("st-key-").removesuffix("_apply")
    page.locator(f".st-key-{prefix}_count input").wait_for(timeout=60_000)
    set_number(page, f"{prefix}_count", 3)
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    assert "Apply a fix and verify it" in expander.inner_text()
    expander.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    expander.screenshot(path=str(ARTIFACTS / "fix-apply.png"))
    apply.click()
    wait_for_app(page)
    page.get_by_text("Queued 3 pairs").wait_for(timeout=60_000)
    (record,) = pairing.list_records(run_id)
    for pair in record["pairs"]:
        for member in pair:
            wait_ended(store, member)
    page.reload()
    result = page.locator(".st-key-inspect_fix")
    result.locator(".js-plotly-plot").wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_timeout(800)
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    text = result.inner_text()
    assert "95% interval" in text and "fixed minus original" in text, text
    result.scroll_into_view_if_needed()
    result.screenshot(path=str(ARTIFACTS / "fix-result.png"))
    print(f"screenshots: {ARTIFACTS / 'fix-apply.png'}, {ARTIFACTS / 'fix-result.png'}")
