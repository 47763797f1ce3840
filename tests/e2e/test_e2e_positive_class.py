"""The positive class in the browser: an imported lesion / normal dataset (lesion sorts first), trained for real,
then Inspect at 1280 px: every two-class label names lesion; saves test-artifacts/inspect-positive-class.png."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.datasets.scans import write_nifti
from tests.e2e.conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e

ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"


@pytest.fixture
def lesion_run(lab_home, tmp_path):
    """A finished 4-epoch run on an import of 12 'lesion' (a bright blob) and 12 'normal' NIfTI volumes of 12^3."""
    from engine import datasets, validation
    from engine.config import RunConfig
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training import execute_run

    rng = np.random.default_rng(0)
    for class_name in ("lesion", "normal"):
        for index in range(12):
            volume = rng.normal(0.0, 0.1, (12, 12, 12)).astype(np.float32)
            if class_name == "lesion":
                centre = rng.integers(3, 9, 3)
                volume[tuple(slice(c - 2, c + 2) for c in centre)] += 1.0
            write_nifti(tmp_path / "scans" / class_name / f"case{index:02d}.nii", volume)
    assert datasets.import_dataset(tmp_path / "scans", "lesions").positive_class == "lesion"
    config = validation.validate(RunConfig.from_dict({
        "name": "lesion vs normal",
        "data": {"dataset": "lesions", "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, "padding": "same"},
        "training": {"epochs": 4, "batch_size": 4, "learning_rate": 3e-3},
    }))
    store = open_store()
    run_id = store.create_run(config, status=RunStatus.RUNNING)
    assert execute_run(store, run_id)["status"] == RunStatus.FINISHED
    assert store.get_run(run_id).positive_class == "lesion"
    return run_id


def test_inspect_names_the_positive_class_at_1280_px(lesion_run, dashboard, browser_page):
    page = browser_page
    page.set_default_timeout(180_000)  # the 3D view renders in software on a shared CPU
    page.set_viewport_size({"width": 1280, "height": 1600})
    started = time.perf_counter()
    page.goto(f"{dashboard}/inspect?run={lesion_run}")
    page.get_by_role("heading", name="Inspect", exact=True).wait_for(timeout=60_000)
    page.get_by_role("heading", name="Validation", exact=True).wait_for(timeout=60_000)
    page.get_by_role("heading", name="Validation", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    for key in ("inspect_val_cm", "inspect_val_roc", "inspect_val_pr"):
        page.locator(f".st-key-{key} .js-plotly-plot").first.wait_for(state="attached", timeout=90_000)
    wait_for_app(page)
    print(f"\nInspect drawn {time.perf_counter() - started:.1f} s after opening it")
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "positive class: lesion" in body
    assert "Decision threshold on P(lesion)" in body
    assert "Sensitivity (lesion)" in body and "Specificity (lesion)" in body
    if "Youden's J" in body:
        assert "on P(lesion)" in body.split("Youden's J", 1)[1]
    legend = page.locator(".st-key-inspect_val_roc .legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert any(text.startswith("lesion (AUC") for text in legend), legend
    # The metric labels are not cut off: each label's text fits its box.
    clipped = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=\"stMetricLabel\"]')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
    )
    assert not clipped, f"cut-off metric labels: {clipped}"
    page.get_by_role("heading", name="Validation", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    path = ARTIFACTS / "inspect-positive-class.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
