"""Predict in the real dashboard: a hosted demo pinning its model lands on Predict; an uploaded DICOM series
is predicted with its saliency overlay. Then the run's HTML report opens in Chromium with no request leaving it.

One tiny run is trained in the test process (tests/inference/tiny_lab.py) before the server starts; the
screenshots go to test-artifacts/ (predict-demo-landing.png, predict-series.png, report.png).
"""

from __future__ import annotations

import shutil

import pytest

from engine.evaluation import model_card
from engine.store import open_store
from tests.e2e.conftest import ARTIFACTS, start_dashboard, stop_dashboard, wait_for_app
from tests.inference import tiny_lab

pytestmark = pytest.mark.e2e


def _show_every_chart(page, count: int) -> None:
    """Streamlit draws a Plotly chart when it scrolls into view (and loads Plotly first): a tall viewport, then
    wait until ``count`` charts are drawn."""
    page.set_viewport_size({"width": 1280, "height": 2600})
    page.locator(".js-plotly-plot").nth(count - 1).wait_for(timeout=60_000)
    page.wait_for_timeout(1000)


def test_demo_lands_on_predict_and_an_uploaded_series_is_predicted_with_saliency(lab_home, tmp_path, browser_page):
    import os

    store = open_store()
    source, run_id = tiny_lab.dicom_run(tmp_path, store)
    series = next((source / "lesion").iterdir())
    upload = shutil.make_archive(str(tmp_path / "series"), "zip", root_dir=series.parent, base_dir=series.name)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONV3D_LAB_DEMO": "1", "CONV3D_LAB_DEMO_MODEL": str(run_id)}
    process, url = start_dashboard(env, tmp_path / "streamlit.log")
    page = browser_page
    try:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(url)
        wait_for_app(page)
        page.get_by_role("heading", name="Predict").wait_for()
        assert page.get_by_text("The model to try:").is_visible()
        page.screenshot(path=str(ARTIFACTS / "predict-demo-landing.png"), full_page=True)

        page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(upload)
        wait_for_app(page)
        page.get_by_role("button", name="Predict").click()
        wait_for_app(page)
        page.get_by_role("heading", name="Prediction: ").wait_for(timeout=240_000)
        _show_every_chart(page, 3)
        assert page.locator("[data-testid=stException]").count() == 0
        assert page.locator(".js-plotly-plot").count() == 3  # probabilities, slices with saliency, reference
        assert page.get_by_text("HiResCAM saliency for").is_visible()
        assert page.locator(".js-plotly-plot .colorbar").count() >= 1  # the overlay's Grad-CAM colour bar
        page.screenshot(path=str(ARTIFACTS / "predict-series.png"), full_page=True)
        # The upload was deleted once predicted: nothing of it is left in the imports folder.
        from engine import paths

        assert [p.name for p in paths.imports_dir().iterdir() if p.name.startswith(".")] == []
    finally:
        stop_dashboard(process)  # (Chromium runs with this workspace in its environment: ended by its fixture)

    report = model_card.write_report(store, run_id, tmp_path / "report.html")
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(("file:", "data:", "blob:", "about:")) else None)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(report.as_uri())
    page.wait_for_timeout(2000)
    for section in model_card.SECTIONS:
        heading = page.locator(f"section#{section} h2")
        heading.scroll_into_view_if_needed()
        assert heading.is_visible(), section
    assert page.locator(".js-plotly-plot .main-svg").count() >= 4  # curves, confusion, ROC/PR, gallery
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert outside == []
