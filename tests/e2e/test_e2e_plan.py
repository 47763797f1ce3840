"""Train's "Plan for me" on the real dashboard in headless Chromium at 1280 px.

Plans phantom_lesions with the learning-rate range test (a real `python -m engine plan` subprocess: tens of
seconds) and saves test-artifacts/train-plan-1280.png: the top of the Train page with the plan's summary and
the reasons under the Data section.
"""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"


def test_plan_for_me_fills_the_train_form(lab_home, dashboard, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 2200})
    page.goto(f"{dashboard}/train")
    page.locator(".st-key-train_dataset").wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-train_dataset").click()
    page.get_by_role("option", name="Head phantoms with lesions (phantom_lesions)").click()
    wait_for_app(page)
    page.locator(".st-key-train_plan").get_by_role("button", name="Plan for me").first.click()
    page.get_by_text("Why the plan chose these").first.wait_for(timeout=600_000)
    wait_for_app(page)
    page.wait_for_timeout(800)
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    body = page.locator("body").inner_text()
    assert "Planned for phantom_lesions: 400 samples" in body
    assert "range test (run #1" in body and "per training sample" in body
    assert page.locator(".st-key-train_batchnorm_momentum input").input_value() == "0.900"
    page.mouse.move(1270, 2190)  # away from the button, so its tooltip does not cover the page
    page.wait_for_timeout(500)
    path = ARTIFACTS / "train-plan-1280.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
