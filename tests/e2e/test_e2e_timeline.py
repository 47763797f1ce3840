"""A run's timeline (its events) on the real Inspect page in headless Chromium at 1280 px.

Builds a synthetic run (stored predictions, no training) with a few events, one of them holding Markdown
and HTML that must show as typed, opens the timeline expander and saves test-artifacts/inspect-timeline.png.
"""

from __future__ import annotations

import pytest

from conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"
TYPED = "note [click](https://evil.example) **bold** <b>tag</b>"


def test_the_timeline_of_a_run_shows_its_events_as_text(lab_home, dashboard, browser_page):
    from engine import paths
    from engine.store import open_store
    from tests.fake_runs import predictions_run

    store = open_store()
    run_id = predictions_run(store, num_classes=2, epochs=3, class_names=["lesion", "normal"], positive_class="lesion")
    paths.run_dir(run_id)  # its folder exists, as a trained run's does (no best.keras: that button is disabled)
    for message, level in (("queued: waiting for a free slot", "info"), ("started on slot cpu (pid 4242)", "info"),
                           ("epoch 2: the learning rate was reduced to 0.0005", "info"), (TYPED, "warning"),
                           ("finished: best val_loss 0.2412 at epoch 3", "info")):
        store.log_event(run_id, message, level=level)

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{dashboard}/inspect?run={run_id}")
    expander = page.locator(".st-key-inspect_timeline_expander")
    expander.wait_for(timeout=60_000)
    wait_for_app(page)
    assert "Timeline (5 events)" in expander.inner_text()
    expander.locator("summary").click()
    grid = expander.locator("[data-testid='stDataFrame']")
    grid.wait_for(timeout=30_000)
    wait_for_app(page)
    page.wait_for_timeout(800)  # the grid's first paint
    assert page.locator(ERRORS).count() == 0, page.locator(ERRORS).first.inner_text()
    # No link was made of the message, and it reads as typed (the grid draws cells on a canvas; its
    # accessible table holds the text).
    assert expander.locator("a[href*='evil.example']").count() == 0
    assert TYPED in grid.inner_text() or page.get_by_text(TYPED, exact=True).count() >= 1
    page.locator(".st-key-inspect_share").scroll_into_view_if_needed()
    path = ARTIFACTS / "inspect-timeline.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
