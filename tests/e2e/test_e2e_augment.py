"""The Train page's augmentation preview in the real dashboard and headless Chromium at 1280 px: the helper
process runs the training pipeline and the before / after slices are drawn (screenshot in test-artifacts/)."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import ARTIFACTS, set_number, wait_for_app

pytestmark = pytest.mark.e2e

# The helper process starts TensorFlow and generates nothing (the dataset preview already did).
PREVIEW_TIMEOUT_S = 120
TRACES_JS = """() => {
  const plot = document.querySelector('.st-key-train_augment_preview_chart .js-plotly-plot');
  return plot && plot.data ? plot.data.length : 0;
}"""


def test_the_augmentation_preview_shows_before_and_after(dashboard, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.goto(f"{dashboard}/train")
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)  # the first run describes the default model in a helper process
    page.locator(".st-key-train_dataset input[role='combobox']").click()
    page.get_by_role("option", name=re.compile("phantom_lesions")).click()
    wait_for_app(page)
    set_number(page, "train_option_phantom_lesions_num_samples", 24)
    set_number(page, "train_option_phantom_lesions_size", 32)
    page.locator(".st-key-train_augment label").click()
    wait_for_app(page)
    set_number(page, "train_rotate_degrees", 30)
    set_number(page, "train_rotate_probability", 1)
    page.locator(".st-key-train_augment_preview button").click()
    started = time.monotonic()
    page.wait_for_function(f"() => ({TRACES_JS})() > 0", timeout=PREVIEW_TIMEOUT_S * 1000)
    wait_for_app(page)
    print(f"augmentation preview drawn {time.monotonic() - started:.1f} s after the click")
    assert page.evaluate(TRACES_JS) == 8  # 4 volumes, before and after
    assert not page.locator("[data-testid='stException']").count()
    assert not page.locator("[data-testid='stAlertContentError']").count()
    page.get_by_text("as the network gets them").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    chart = page.locator(".st-key-train_augment_preview_chart")
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "train-augment-preview.png"), full_page=True)
    chart.screenshot(path=str(ARTIFACTS / "train-augment-preview-chart.png"))
    page.locator(".st-key-train_augmentations").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "train-augment-knobs.png"))
