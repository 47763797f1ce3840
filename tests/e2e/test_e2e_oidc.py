"""OpenID Connect sign-in (``[auth]`` in the secrets) against a real provider on loopback.

The provider is ``oidc_provider_mock`` (Authlib's server classes in a Flask app) in a thread
of this test on 127.0.0.1: it accepts any client id and secret, and its authorize form lets
the test type the subject, which it also returns as the e-mail claim. The dashboard reads a
secrets file in tmp_path (``--secrets.files``), never the repository's ``.streamlit/``.

A fake "running" run on another host holds the only training slot, so the run launched here
stays queued: no worker starts (and with CONV3D_LAB_STANDBY=0 no standby); only the Train
page's model description starts TensorFlow, once, in its helper process.
"""

from __future__ import annotations

import re
import threading
import time
import warnings

import pytest
import werkzeug.serving

with warnings.catch_warnings():
    # Authlib 1.9 deprecates modules the mock imports, and its import turns such warnings to "always".
    import authlib.deprecate

    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from oidc_provider_mock import app as provider_app

from engine.jobs import control, standby
from engine.runs import RunStatus
from engine.store import open_store
from tests.fake_runs import fake_run
from tests.e2e.conftest import ARTIFACTS, wait_for_app
from ui import access
from ui.text import WORD_JOINER

pytestmark = pytest.mark.e2e

EMAIL = "alice@example.org"
# Only the dashboard and the provider are reachable: the provider's pages link a stylesheet on a CDN.
NOT_LOOPBACK = re.compile(r"^https?://(?!(localhost|127\.0\.0\.1)[:/])")


class LoopbackProvider:
    """The mock provider served from a thread of this process on a free loopback port."""

    def __init__(self) -> None:
        self._server = werkzeug.serving.make_server("127.0.0.1", 0, provider_app(), threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                         daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut it down and close its port (a connection is then refused at once); idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
            self._server.server_close()


@pytest.fixture
def oidc_provider():
    provider = LoopbackProvider()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def dashboard_env():
    # No warm standby worker; the fake run's heartbeat stays fresh however long the pages take.
    return {standby.STANDBY_ENV: "0", control.STALE_HEARTBEAT_ENV: "3600"}


@pytest.fixture
def dashboard_args(tmp_path, oidc_provider):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        # Streamlit puts the server's port in place of {port}.
        'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        'cookie_secret = "a cookie secret for this test only"\n'
        'client_id = "conv3d-lab-e2e"\n'
        'client_secret = "any secret: the mock provider accepts every client"\n'
        f'server_metadata_url = "{oidc_provider.url}/.well-known/openid-configuration"\n'
    )
    return ["--secrets.files", str(secrets)]


def _screenshot(page, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _phase(what: str, started: float) -> None:
    print(f"{time.perf_counter() - started:6.1f} s  {what}")


def _sidebar_text(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text().replace(WORD_JOINER, "")


def _no_error_box(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    sidebar_errors = page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']")
    assert sidebar_errors.count() == 0, sidebar_errors.all_inner_texts()


def test_sign_in_owns_the_launch_and_sign_out_locks_again(oidc_provider, dashboard, browser_page):
    started = time.perf_counter()
    page = browser_page
    page.route(NOT_LOOPBACK, lambda route: route.abort())
    store = open_store()
    holder = fake_run(store, RunStatus.RUNNING, epochs_done=1, name="holds the only slot")

    # Signed out: viewing works, launching is refused with access.refusal()'s sentence.
    page.goto(f"{dashboard}/train")
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    sign_in = page.locator(".st-key-access_login button")
    sign_in.wait_for()
    page.locator(".st-key-train_launch button").click()
    page.get_by_text(access.SIGN_IN_REFUSAL, exact=True).wait_for()
    wait_for_app(page)
    assert [run.id for run in store.list_runs()] == [holder]
    _no_error_box(page)
    _screenshot(page, "oidc-signed-out-refused")
    _phase("signed out, Launch refused", started)

    # Sign in: Streamlit sends the browser to the provider's authorize form, then back to Home.
    sign_in.click()
    page.wait_for_url(re.compile(re.escape(oidc_provider.url) + r"/oauth2/authorize"), timeout=30_000)
    page.locator("input[name='sub']").fill(EMAIL)
    _screenshot(page, "oidc-provider-authorize")
    page.get_by_role("button", name="Authorize").click()
    page.get_by_role("heading", name="Conv3D Lab", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-access_logout button").wait_for()
    assert f"Signed in as {EMAIL}" in _sidebar_text(page)
    _no_error_box(page)
    _phase("signed in at the provider and back", started)

    # Signed in: the Train page launches, and the run's owner is the provider's e-mail.
    page.goto(f"{dashboard}/train")
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-train_launch button").click()
    page.wait_for_url(re.compile(r"runs=\d+"), timeout=30_000)
    run_id = int(re.search(r"runs=(\d+)", page.url).group(1))
    run = store.get_run(run_id)
    assert (run.owner, run.status) == (EMAIL, RunStatus.QUEUED)
    page.locator(f".st-key-runs_stop_{run_id} button").wait_for()  # may_change(): this session may stop it
    wait_for_app(page)
    assert f"Signed in as {EMAIL}" in _sidebar_text(page)
    _no_error_box(page)
    _screenshot(page, "oidc-signed-in-launched")
    _phase("launched from Train, owner recorded", started)

    # Sign out: through the provider's end-session page back to the lab, signed out again.
    page.locator(".st-key-access_logout button").click()
    page.wait_for_url(re.compile(re.escape(oidc_provider.url) + r"/oauth2/end_session"), timeout=30_000)
    page.get_by_role("button", name="End session").click()
    page.get_by_role("heading", name="Conv3D Lab", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    page.locator(".st-key-access_login button").wait_for()
    assert "Signed in as" not in _sidebar_text(page)
    page.goto(f"{dashboard}/runs?runs={run_id}")
    # In the run's collapsed "Tags, notes, archive, delete" expander: in the page, not visible.
    page.get_by_text(f"Run #{run_id} is read-only here: {access.SIGN_IN_REFUSAL}").wait_for(
        state="attached", timeout=60_000)
    wait_for_app(page)
    assert page.locator(f".st-key-runs_stop_{run_id} button").count() == 0
    assert store.get_run(run_id).status == RunStatus.QUEUED
    _no_error_box(page)
    _screenshot(page, "oidc-signed-out-again")
    _phase("signed out at the provider, run read-only", started)

    # The provider goes away: Sign in says so in the sidebar instead of sending the browser to an error page.
    oidc_provider.stop()
    page.locator(".st-key-access_login button").click()
    sidebar_error = page.locator("[data-testid='stSidebar'] [data-testid='stAlertContentError']")
    sidebar_error.wait_for(timeout=30_000)
    wait_for_app(page)
    message = sidebar_error.inner_text().replace(WORD_JOINER, "")
    assert f"Sign-in is unavailable: the sign-in provider did not answer at {oidc_provider.url}" in message, message
    assert page.url.startswith(dashboard) and page.locator("[data-testid='stException']").count() == 0
    _screenshot(page, "oidc-provider-down")
    _phase("provider down: a sentence in the sidebar", started)

    # Nothing left for teardown to wait on: the queued run leaves the queue, the fake one ends.
    store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.QUEUED], finished_at=time.time())
    store.transition(holder, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], finished_at=time.time())
