"""The OpenID Connect gate (``[auth]`` in the secrets, issue 16) driven with AppTest: ``at.user``
stands for the identity cookie. The real sign-in through a provider is tests/e2e/test_e2e_oidc.py.

A fake "running" run on another host holds the only slot, so nothing the tests queue starts a worker.
"""

from __future__ import annotations

import socket

import pytest

from engine.store import open_store
from ui import access
from ui.text import unescape_markdown


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def auth_section(server_metadata_url: str | None) -> dict[str, str]:
    section = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a cookie secret for tests only",
        "client_id": "conv3d-lab-tests",
        "client_secret": "not a secret",
    }
    if server_metadata_url:
        section["server_metadata_url"] = server_metadata_url
    return section


def errors(at) -> list[str]:
    return [unescape_markdown(e.value) for e in at.error]


def button_keys(at) -> set[str]:
    return {button.key for button in at.button}


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def oidc_app(app, make_run):
    """The Train page with ``[auth]`` configured and ``user`` as st.user (a slot held by a fake run)."""
    make_run("running", epochs_done=1)

    def open_train(user: dict, server_metadata_url: str | None = "http://127.0.0.1:9/.well-known/openid-configuration"):
        at = app()
        at.secrets["auth"] = auth_section(server_metadata_url)
        at.user = user
        at.switch_page("app_pages/train.py").run()
        no_exceptions(at)
        return at

    return open_train


def test_signed_out_the_train_page_refuses_launch_and_offers_sign_in(oidc_app, page_text):
    at = oidc_app({"is_logged_in": False})
    assert "This lab is open" not in page_text(at)
    assert "access_login" in button_keys(at) and "access_logout" not in button_keys(at)
    assert "Signed in as" not in page_text(at)
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    assert access.SIGN_IN_REFUSAL in errors(at)
    assert len(open_store().list_runs()) == 1


def test_signed_in_the_launch_is_owned_by_the_providers_email(oidc_app, page_text):
    at = oidc_app({"is_logged_in": True, "email": "bob@example.org", "sub": "bob-123"})
    assert "Signed in as bob@example.org" in page_text(at)
    assert {"access_logout"} <= button_keys(at) and "access_login" not in button_keys(at)
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    assert open_store().list_runs(limit=1)[0].owner == "bob@example.org"


def test_an_unreachable_provider_is_a_sentence_not_a_redirect(oidc_app):
    url = f"http://127.0.0.1:{_closed_port()}/.well-known/openid-configuration"
    at = oidc_app({"is_logged_in": False}, server_metadata_url=url)
    at.button(key="access_login").click().run()
    no_exceptions(at)
    assert any(e.startswith(f"Sign-in is unavailable: the sign-in provider did not answer at {url}") for e in errors(at)), errors(at)
    assert "access_login" in button_keys(at)  # still signed out, the button still there


def test_an_incomplete_auth_section_is_a_sentence(oidc_app):
    # No server_metadata_url: nothing to check first, and st.login() itself refuses the configuration.
    at = oidc_app({"is_logged_in": False}, server_metadata_url=None)
    at.button(key="access_login").click().run()
    no_exceptions(at)
    assert any(e.startswith("Sign-in is not set up correctly: ") for e in errors(at)), errors(at)
