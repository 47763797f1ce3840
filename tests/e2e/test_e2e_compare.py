"""The Compare page in headless Chromium: a copied URL opened in a fresh browser session restores the
same selection, metric, axis and grouping; screenshot test-artifacts/compare.png."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from conftest import ARTIFACTS, wait_for_app
from tests.fake_runs import compare_run, synthetic_config
from engine.store import open_store

pytestmark = pytest.mark.e2e

# JavaScript: the legend names of the curves chart.
TRACE_NAMES_JS = """() => {
  const plot = document.querySelector('.st-key-compare_curves_chart .js-plotly-plot');
  return plot && plot.data ? plot.data.filter(t => t.showlegend !== false).map(t => t.name) : [];
}"""


def _view(page) -> dict:
    """What the page shows: selected run chips, the chosen radio options and selectbox values, the traces."""
    chips = page.locator(".st-key-compare_selected .react-aria-ComboBox [data-tag]").evaluate_all(
        "tags => tags.map(tag => tag.getAttribute('aria-label'))")
    return {
        "runs": chips,
        "metric": page.locator(".st-key-compare_metric input[role='combobox']").input_value(),
        "group": page.locator(".st-key-compare_group input[role='combobox']").input_value(),
        "axis": page.locator(".st-key-compare_axis label[data-selected='true']").inner_text().strip(),
        "at": page.locator(".st-key-compare_at label[data-selected='true']").inner_text().strip(),
        "traces": sorted(page.evaluate(TRACE_NAMES_JS)),
    }


def _open(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Compare runs", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-compare_curves_chart .js-plotly-plot").first.wait_for(timeout=60_000)
    page.locator(".st-key-compare_parallel .js-plotly-plot").first.wait_for(timeout=60_000)
    wait_for_app(page)


def test_a_copied_compare_url_restores_the_view_in_a_fresh_browser_session(dashboard, browser_page):
    store = open_store()
    ids = [compare_run(store, synthetic_config(index, 40), seed=index) for index in range(8)]
    store.update_run(ids[0], tags=["baseline"], notes="the first of the seed sweep")
    chosen = [ids[4], ids[0], ids[1], ids[5]]
    query = (f"runs={','.join(map(str, chosen))}&metric=accuracy&curves=train,val&axis=time"
             f"&group=training.seed&result=val_accuracy&at=last")
    page = browser_page
    _open(page, f"{dashboard}/compare?{query}")
    view = _view(page)
    assert [chip.split(" ")[0] for chip in view["runs"]] == [f"#{i}" for i in chosen]
    assert (view["metric"], view["group"], view["axis"], view["at"]) == \
        ("accuracy", "training.seed", "wall time", "last epoch")
    # Seeds: run 4 -> 1, run 0 -> 0, run 1 -> 1, run 5 -> 2: runs 4 and 1 make a group of two (a mean line).
    assert any("(mean)" in name for name in view["traces"]), view["traces"]

    # Change the axis and the grouping on the page; the URL follows.
    page.locator(".st-key-compare_axis label[data-testid='stRadioOption']", has_text="epoch").click()
    wait_for_app(page)
    # Typed, then chosen: the list of config fields is long, and a click on an option still scrolling into
    # view can land on the list, not the option.
    group_box = page.locator(".st-key-compare_group input[role='combobox']")
    group_box.click()
    group_box.fill("model.architecture")
    page.get_by_role("option", name="model.architecture", exact=True).click()
    wait_for_app(page)
    page.wait_for_function("() => window.location.search.includes('axis=epoch')", timeout=30_000)
    page.wait_for_function("() => window.location.search.includes('group=model.architecture')", timeout=30_000)
    copied = page.url
    before = _view(page)
    assert before["axis"] == "epoch" and before["group"] == "model.architecture"
    # Streamlit scrolls inside its own container: a tall viewport shows the whole page in one picture.
    page.set_viewport_size({"width": 1400, "height": 4200})
    page.wait_for_timeout(1500)  # the charts re-lay themselves out to the new width
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1700})
    assert page.locator("[data-testid='stException']").count() == 0

    # A fresh browser session (new context: no cookies, no Streamlit session) opens the copied link.
    fresh = page.context.browser.new_context(viewport={"width": 1400, "height": 1700}).new_page()
    try:
        _open(fresh, copied)
        assert _view(fresh) == before
        assert parse_qs(urlparse(fresh.url).query) == parse_qs(urlparse(copied).query)
        assert fresh.locator("[data-testid='stException']").count() == 0
    finally:
        fresh.context.close()
