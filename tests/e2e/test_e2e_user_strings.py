"""In the real browser, Markdown and HTML payloads in run names, class names and error messages
come out as text on the Home, Runs and Inspect pages: no link, no image, no injected element,
no request to the payload's host, and the Plotly legends read literally."""

from __future__ import annotations

import pytest

from conftest import ARTIFACTS, wait_for_app
from tests.fake_runs import fake_run
from tests.fake_runs import predictions_run

pytestmark = pytest.mark.e2e

PAYLOAD = (
    '[click me](https://evil.example/phish) ![t](https://evil.example/pixel.png) '
    '<a href="https://evil.example/a">a</a> <b>bold</b> <img src="https://evil.example/i.png">'
)
# Every element a payload could have produced, counted in the whole document (SVG links included).
INJECTED_JS = """() => {
  const hrefOf = e => e.getAttribute('href') || e.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '';
  return {
    links: [...document.querySelectorAll('a')].filter(e => hrefOf(e).includes('evil.example')).length,
    images: document.querySelectorAll('img[src*="evil.example"], image[href*="evil.example"]').length,
    bold: [...document.querySelectorAll('[data-testid="stApp"] b')].filter(e => e.textContent === 'bold').length,
  };
}"""
LEGEND_JS = """() => [...document.querySelectorAll('.js-plotly-plot .legendtext, .js-plotly-plot .xtick text')]
  .map(e => e.textContent)"""


def _store():
    from engine.store import open_store

    return open_store()


def _check(page, name: str) -> list[str]:
    wait_for_app(page)
    page.wait_for_timeout(1000)  # Plotly draws after the script run
    assert page.evaluate(INJECTED_JS) == {"links": 0, "images": 0, "bold": 0}
    assert page.locator("[data-testid='stException']").count() == 0
    path = ARTIFACTS / f"user-strings-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return page.evaluate(LEGEND_JS)


def test_payloads_render_as_text_in_the_browser(dashboard, browser_page):
    store = _store()
    named = fake_run(store, "finished", epochs_done=3, name=PAYLOAD, batches=2)
    failed = fake_run(store, "failed", epochs_done=1, name="broken", error="It broke: " + PAYLOAD)
    inspected = predictions_run(store, num_classes=2, val_size=20, test_size=10, epochs=2)
    store.update_run(inspected, name="classes " + PAYLOAD, class_names=["<b>bold</b> one", "<i>two</i>"])
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(dashboard)
    page.get_by_role("heading", name="Conv3D Lab", exact=True).wait_for(timeout=60_000)
    page.get_by_text(f"#{named} [click me](").first.wait_for()  # addresses hold an invisible word joiner
    _check(page, "home")

    page.goto(f"{dashboard}/runs?runs={named},{failed}")
    page.locator(".st-key-runs_curves .js-plotly-plot").first.wait_for(timeout=60_000)
    page.get_by_text("It broke: [click me](").first.wait_for()
    legends = _check(page, "runs")
    assert f"#{named} {PAYLOAD} · training" in legends, legends  # the tags are the legend's literal text

    page.goto(f"{dashboard}/inspect?run={inspected}")
    page.locator(".st-key-inspect_val_cm .js-plotly-plot").first.wait_for(timeout=60_000)
    ticks = _check(page, "inspect")
    assert "<b>bold</b> one" in ticks and "<i>two</i>" in ticks, ticks  # class names on the confusion axes
    assert page.get_by_text("Decision threshold on P(<i>two</i>)").count() == 1

    assert not [url for url in requests if "evil.example" in url]
