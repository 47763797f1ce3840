"""The real Inspect page in headless Chromium, on a tiny run trained in-process.

Shows the validation heatmap, ROC / PR curves, the per-class and per-sample
tables, then a test sample's three slices with its Grad-CAM overlay; saves
test-artifacts/inspect-overview.png and test-artifacts/inspect-sample.png.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e

# JavaScript: {chart key: [trace types]} of every rendered Plotly chart that has a Streamlit key.
CHARTS_JS = """() => {
  const charts = {};
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const keyed = plot.closest('[class*="st-key-"]');
    const key = keyed ? [...keyed.classList].find(c => c.startsWith('st-key-')).slice(7) : '?';
    charts[key] = (plot.data || []).map(trace => trace.type || 'scatter');
  }
  return charts;
}"""
# JavaScript: the last label under a slider's tick bar (its largest option).
SLIDER_MAX_JS = "bar => bar ? bar.lastElementChild.textContent.trim() : null"
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError'], [data-testid='stAlertContentWarning']"


@pytest.fixture
def trained_run(lab_home):
    """A finished shapes3d run of 3 epochs: val predictions per epoch, test predictions and saliency.npz."""
    from engine import paths, validation
    from engine.config import RunConfig
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training import execute_run

    config = validation.validate(RunConfig.from_dict({
        "name": "e2e inspect",
        "data": {"dataset": "shapes3d", "options": {"num_samples": 64, "size": 16, "mode": "location"},
                 "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.5},
        "training": {"epochs": 3, "batch_size": 8},
    }))
    store = open_store()
    started = time.perf_counter()
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)
    print(f"\nrun {run_id} trained in-process in {time.perf_counter() - started:.1f} s")
    assert summary["status"] == RunStatus.FINISHED, summary
    assert store.prediction_epochs(run_id, "val") == [1, 2, 3]
    assert store.prediction_epochs(run_id, "test")
    assert (paths.run_dir(run_id) / "saliency.npz").exists()
    return run_id


def _screenshot(page, name: str, whole_app: bool = False) -> None:
    """A screenshot; ``whole_app`` first grows the viewport to the app's height (Streamlit scrolls in a
    container, so ``full_page`` alone captures one viewport) and restores it after."""
    path = ARTIFACTS / f"{name}.png"
    viewport = page.viewport_size
    if whole_app:
        height = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
            "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight))"
        )
        page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height + 100)})
        page.wait_for_timeout(1000)  # Plotly redraws on resize
    page.screenshot(path=str(path), full_page=True)
    if whole_app:
        page.set_viewport_size(viewport)
        page.wait_for_timeout(500)
    print(f"screenshot: {path}")


def _assert_no_errors(page) -> None:
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"the page shows an error or warning: {errors.first.inner_text()}"


def test_inspect_page_heatmap_curves_tables_and_overlay(trained_run, dashboard, browser_page):
    page, run_id = browser_page, trained_run
    started = time.perf_counter()
    page.goto(f"{dashboard}/inspect?run={run_id}")
    page.get_by_role("heading", name="Inspect", exact=True).wait_for(timeout=60_000)
    for key in ("inspect_val_cm", "inspect_val_roc", "inspect_val_pr", "inspect_test_cm", "inspect_slices"):
        page.locator(f".st-key-{key} .js-plotly-plot").first.wait_for(timeout=60_000)
    # The per-class tables (validation, test) and the per-sample table.
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= 3")
    wait_for_app(page)
    print(f"Inspect page fully drawn {time.perf_counter() - started:.1f} s after opening it")
    chosen_run = page.locator(".st-key-inspect_run").evaluate(
        "e => e.textContent + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')"
    )
    assert f"#{run_id} e2e inspect" in chosen_run, chosen_run
    charts = page.evaluate(CHARTS_JS)
    assert charts["inspect_val_cm"] == ["heatmap"], charts
    assert charts["inspect_test_cm"] == ["heatmap"], charts
    for key in ("inspect_val_roc", "inspect_val_pr", "inspect_test_roc", "inspect_test_pr"):
        assert "scatter" in charts[key], charts
    _assert_no_errors(page)
    _screenshot(page, "inspect-overview", whole_app=True)

    # The sample viewer on the test split: every test sample has a Grad-CAM map.
    page.locator(".st-key-inspect_sample_split").get_by_text(re.compile(r"^test \(epoch \d+\)")).click()
    wait_for_app(page)
    overlay = page.locator(".st-key-inspect_overlay input[type='checkbox']")
    assert overlay.is_enabled(), "the test sample has no saliency map"
    if not overlay.is_checked():
        page.locator(".st-key-inspect_overlay label").click()
        wait_for_app(page)
    assert overlay.is_checked()
    # Two heatmaps (slice + overlay) in each of the three planes.
    page.wait_for_function(
        "() => { const p = document.querySelector('.st-key-inspect_slices .js-plotly-plot');"
        " return p && p.data && p.data.filter(t => t.type === 'heatmap').length === 6; }",
        timeout=60_000,
    )
    caption = page.get_by_text(re.compile(r"^Sample \d+: true")).inner_text()
    charts = page.evaluate(CHARTS_JS)
    print(f"{caption} (test split); charts: {sorted(charts)}")
    plots = page.locator(".js-plotly-plot").count()
    assert plots >= 8, f"only {plots} Plotly charts rendered: {charts}"  # 2 x (cm, roc, pr), distribution, slices
    _assert_no_errors(page)
    page.get_by_role("heading", name="Samples", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    _screenshot(page, "inspect-sample")


def test_inspect_page_follows_a_run_that_is_still_training(lab_home, dashboard, browser_page):
    """Without a reload, the epoch slider of a running run gains the epoch the worker records next."""
    from engine import paths
    from engine.runs import RunStatus
    from engine.store import open_store
    from tests.fake_runs import predictions_run

    store = open_store()
    run_id = predictions_run(store, num_classes=2, val_size=20, test_size=0, epochs=2, status=RunStatus.RUNNING)
    paths.run_dir(run_id)  # a run that is training has its folder (the worker writes its log there)
    page = browser_page
    page.goto(f"{dashboard}/inspect?run={run_id}")
    page.get_by_text("Still training").wait_for(timeout=60_000)
    ticks = page.locator(".st-key-inspect_epoch [data-testid='stSliderTickBar']")
    ticks.wait_for(timeout=60_000)
    assert ticks.evaluate(SLIDER_MAX_JS) == "2"

    predictions = store.get_predictions(run_id, "val", epoch=2)
    store.save_predictions(run_id, 3, "val", predictions["sample_ids"], predictions["labels"],
                           predictions["probabilities"])
    store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], epochs_done=3)
    recorded = time.perf_counter()
    page.wait_for_function(
        f"() => ({SLIDER_MAX_JS})(document.querySelector(\".st-key-inspect_epoch [data-testid='stSliderTickBar']\"))"
        " === '3'",
        timeout=30_000,
    )
    print(f"\nInspect page showed the new epoch {time.perf_counter() - recorded:.1f} s after it was recorded")
    wait_for_app(page)
    assert page.get_by_text("Still training").count() == 0
    _assert_no_errors(page)
