"""The edge proxy recipe (deploy/Caddyfile) in front of the real server, on loopback, in Chromium.

Caddy (Debian's package; tools/install-test-deps.sh installs it) proxies a real ``streamlit run`` with
the repository's Caddyfile. The test checks every security header on the answers, then loads every
page through the proxy in headless Chromium: the page renders (its heading shows, the websocket is up,
no Streamlit error box) and the console holds no error at all, so a Content-Security-Policy that
blocks something Streamlit needs ("Refused to ...") fails it. Skipped where caddy or Chromium is
missing. Screenshots: test-artifacts/proxy-*.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, wait_for_app
from tests.e2e.conftest import browser_page, dashboard, dashboard_args, dashboard_env  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = REPO_ROOT / "deploy" / "Caddyfile"
# (menu entry, the page's heading)
PAGES = [("Home", "Conv3D Lab"), ("Data", "Data"), ("Train", "Train"), ("Runs", "Runs"), ("Inspect", "Inspect"),
         ("Compare", "Compare runs"), ("Sweeps", "Sweeps")]
EXPECTED_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "frame-ancestors 'self'",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def proxy(dashboard, tmp_path):
    """Caddy with deploy/Caddyfile on a free loopback port in front of the dashboard; yields its URL."""
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (tools/install-test-deps.sh installs Debian's)")
    port = _free_port()
    env = {**os.environ, "LAB_SITE": f"http://127.0.0.1:{port}", "LAB_UPSTREAM": dashboard.split("//", 1)[1],
           "XDG_DATA_HOME": str(tmp_path / "caddy-data"), "XDG_CONFIG_HOME": str(tmp_path / "caddy-config")}
    log = open(tmp_path / "caddy.log", "wb")
    process = subprocess.Popen([caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("caddy did not start: " + (tmp_path / "caddy.log").read_text()[-2000:])
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log.close()


def test_the_proxy_adds_the_security_headers_and_every_page_works_under_them(proxy, browser_page):
    for path in ("/", "/runs", "/_stcore/health"):
        with urllib.request.urlopen(proxy + path, timeout=10) as response:
            for name, part in EXPECTED_HEADERS.items():
                assert part in (response.headers.get(name) or ""), (path, name, response.headers.get(name))
            assert response.headers.get("Server") is None

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1000})
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.on("response", lambda response: console.append(f"http {response.status}: {response.url}")
            if response.status >= 400 else None)
    sockets: list[str] = []
    page.on("websocket", lambda socket_: sockets.append(socket_.url))
    # As a person goes: the lab's address, then the menu. (A deep link such as /runs opened cold makes
    # Streamlit's frontend probe /runs/_stcore/health for a base path first: two 404s in the console, with
    # or without a proxy.)
    page.goto(proxy)
    for title, heading in PAGES:
        if title != "Home":
            page.locator("[data-testid='stSidebarNavLink']", has_text=title).first.click()
        page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
        wait_for_app(page)
        assert page.locator("[data-testid='stException']").count() == 0, title
        assert page.url.split("?")[0].rstrip("/").endswith(title.lower() if title != "Home" else str(proxy)[-5:])
        page.screenshot(path=str(ARTIFACTS / f"proxy-{title.lower()}.png"), full_page=False)
    errors = [line for line in console if line.startswith(("error", "pageerror", "http")) or "Content Security" in line]
    assert errors == [], "\n".join(errors)
    assert sockets and all(url.startswith(proxy.replace("http", "ws")) for url in sockets), sockets
