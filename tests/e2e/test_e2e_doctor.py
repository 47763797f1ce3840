"""The doctor's findings panel on the real Inspect page in headless Chromium.

Builds an overfitting run and a collapsed run synthetically (stored histories
and predictions, no training) and saves test-artifacts/doctor-overfit.png and
test-artifacts/doctor-collapse.png: screenshots of the panel with its charts.
"""

from __future__ import annotations

import pytest

from conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"


def _panel_screenshot(page, url: str, name: str, expected: str) -> str:
    page.goto(url)
    panel = page.locator(".st-key-inspect_doctor")
    panel.wait_for(timeout=60_000)
    panel.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_timeout(800)  # Plotly's first layout pass
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    text = panel.inner_text()
    assert expected in text, text
    panel.scroll_into_view_if_needed()
    path = ARTIFACTS / f"{name}.png"
    panel.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return text


def test_findings_panel_of_an_overfitting_and_a_collapsed_run(lab_home, dashboard, browser_page):
    from engine.store import open_store
    from tests.doctor.sick_runs import collapsed_run, overfitting_run

    store = open_store()
    overfit, collapsed = overfitting_run(store), collapsed_run(store)
    text = _panel_screenshot(browser_page, f"{dashboard}/inspect?run={overfit}", "doctor-overfit",
                             "Overfitting: the validation loss was lowest at epoch 3")
    assert "1 problem" in text
    text = _panel_screenshot(browser_page, f"{dashboard}/inspect?run={collapsed}", "doctor-collapse",
                             "Collapse onto one class")
    assert "lesion" not in text or "lesion_[T2]" in text  # class names shown literally


def test_consequences_follow_their_root_cause_in_the_panel(lab_home, dashboard, browser_page):
    from engine.store import open_store
    from tests.doctor.sick_runs import batchnorm_gap_run

    run_id = batchnorm_gap_run(open_store())
    text = _panel_screenshot(browser_page, f"{dashboard}/inspect?run={run_id}", "doctor-root-cause",
                             "CONSEQUENCE of batchnorm_gap")
    assert text.index("BatchNorm train/inference gap") < text.index("CONSEQUENCE of batchnorm_gap")
    assert "1 problem" in text and "consequences of them" in text


def test_a_one_class_split_reads_undefined_on_inspect(lab_home, dashboard, browser_page):
    from engine.store import open_store
    from tests.evaluation.test_one_class_split import _one_class_run

    run_id = _one_class_run(open_store())
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 2400})  # the headline metrics sit below the doctor panel
    page.goto(f"{dashboard}/inspect?run={run_id}")
    headline = page.get_by_text("Balanced accuracy", exact=True).first
    headline.wait_for(timeout=90_000)
    wait_for_app(page)
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "undefined (no samples of 'lesion')" in body and "Balanced accuracy" in body
    assert "recall (lesion): undefined (no samples)" in body
    path = ARTIFACTS / "inspect-one-class.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
