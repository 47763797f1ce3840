"""Who may change things in this lab, and who the person at this browser is.

Viewing is always open. Changing things (launch, stop, resume, edit, delete,
import) is gated by the first of these that ``.streamlit/secrets.toml`` configures:

1. ``[auth]``: Streamlit's OpenID Connect login (``st.login``); the identity is
   the provider's e-mail (or subject).
2. ``lab_password``: one shared password, typed in the sidebar and compared with
   ``hmac.compare_digest``; the identity is this browser's (below).
3. neither (or no secrets file): the lab is open and the Home page says so; the
   identity is this browser's.

A browser's identity survives a reload: ``remember_browser()`` keeps a random
token in a cookie on the lab's origin (Streamlit reads cookies, ``st.context.cookies``,
but sets none, so a one-line script does) and the owner recorded for a run is a hash
of it, never the token itself. Without a browser behind the session (AppTest) or
with cookies blocked, the identity lasts as long as the session.

``demo = true`` in the secrets (or ``CONV3D_LAB_DEMO=1``) makes the lab a hosted
demo: the pages pass ``demo()`` and ``identity()`` to the engine, which holds each
launch to the caps of ``engine.settings.DemoCaps`` and lets a session change only
the runs it launched.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import re
import secrets as token_source
import urllib.request
from collections.abc import Mapping
from typing import Any

import streamlit as st

from engine import settings
from engine.runs import RunRecord
from ui.text import markdown_text

PASSWORD_KEY = "lab_password"
_UNLOCKED = "_access_unlocked"
_SESSION_ID = "_access_session_id"
# Seconds the Sign in button waits for the provider's discovery document before saying it is unreachable.
PROVIDER_TIMEOUT_S = 5.0
_MINTED_TOKEN = "_access_browser_token"
# The cookie that keeps a browser's token, and for how long after its last visit (seconds).
BROWSER_COOKIE = "conv3d_lab_browser"
BROWSER_COOKIE_MAX_AGE_S = 30 * 24 * 3600
# What token_source.token_urlsafe(32) makes: 43 URL-safe base64 characters.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
_COOKIE_CONTAINER_KEY = "access_browser_cookie"


def _secret(name: str, default: Any = None) -> Any:
    """A top-level secret; ``default`` when there is no secrets file or no such key."""
    try:
        return st.secrets.get(name, default)
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return default


def demo() -> bool:
    """Whether this lab is a hosted demo: ``demo = true`` in the secrets, else ``$CONV3D_LAB_DEMO``."""
    value = _secret("demo")
    if value is None:
        return settings.demo_mode()
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def gate() -> str:
    """How changes are gated: "oidc" (``[auth]`` configured), "password" (``lab_password``) or "open"."""
    if _secret("auth") is not None:
        return "oidc"
    if _secret(PASSWORD_KEY):
        return "password"
    return "open"


def _logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except (AttributeError, KeyError):
        return False


def can_change() -> bool:
    """Whether this session may launch, stop, edit, delete and import."""
    mode = gate()
    if mode == "oidc":
        return _logged_in()
    if mode == "password":
        return bool(st.session_state.get(_UNLOCKED))
    return True


def browser_token(cookie_value: str | None) -> str | None:
    """The token in a value of ``BROWSER_COOKIE``; None when it is missing or not one this lab mints
    (an edited cookie is ignored and replaced, never trusted as an identity of its choosing)."""
    if cookie_value is None or not _TOKEN_PATTERN.fullmatch(cookie_value):
        return None
    return cookie_value


def browser_identity(token: str) -> str:
    """The owner recorded for the browser holding ``token``: a hash, so an owner read from the store
    cannot be put in a cookie to act as that browser."""
    return "session-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def _request_cookies() -> Mapping[str, str] | None:
    """The cookies the browser sent when this session connected; None when no browser is behind the
    session (AppTest and bare scripts send no HTTP request and keep no cookie)."""
    try:
        if not st.context.headers:
            return None
        return st.context.cookies
    except RuntimeError:  # no Streamlit runtime at all
        return None


def _browser_token_of_session() -> str | None:
    """This browser's token: its cookie's, else one minted for this session (``remember_browser``
    stores it in the cookie); None without a browser."""
    cookies = _request_cookies()
    if cookies is None:
        return None
    token = browser_token(cookies.get(BROWSER_COOKIE))
    if token is None:
        token = st.session_state.setdefault(_MINTED_TOKEN, token_source.token_urlsafe(32))
    return token


def identity() -> str:
    """Who launches from this session: the login's e-mail with OIDC, else an id of this browser
    (kept across reloads by ``remember_browser``; of this session only when there is no browser)."""
    if gate() == "oidc" and _logged_in():
        return str(st.user.get("email") or st.user.get("sub") or "signed-in user")
    if _SESSION_ID not in st.session_state:
        token = _browser_token_of_session()
        st.session_state[_SESSION_ID] = (browser_identity(token) if token
                                         else "session-" + token_source.token_hex(6))
    return st.session_state[_SESSION_ID]


def remember_browser() -> None:
    """Keep this browser's token in its cookie (set again on every page load, so it lasts
    ``BROWSER_COOKIE_MAX_AGE_S`` after the last visit). Call once per script run, before the page.

    Streamlit cannot set a cookie from Python, so a script does, through ``st.html`` (run in the
    page itself, not a frame, so the cookie is the lab's origin's); the token was checked against
    ``_TOKEN_PATTERN``, so it cannot break out of the string. The element renders nothing and sits
    in a hidden container. With OIDC the login is the identity and no cookie is set.
    """
    if gate() == "oidc":
        return
    token = _browser_token_of_session()
    if token is None:
        return
    script = (
        f'<script>document.cookie = "{BROWSER_COOKIE}={token}; Path=/; Max-Age={BROWSER_COOKIE_MAX_AGE_S}; '
        'SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");</script>'
    )
    # A container the style takes out of the layout (with the wrapper Streamlit puts around it): an
    # empty element would still add the column's gap above the page.
    hidden = f"div:has(> .st-key-{_COOKIE_CONTAINER_KEY}) {{display: none}}"
    with st.container(key=_COOKIE_CONTAINER_KEY):
        st.html(f"<style>{hidden}</style>{script}", unsafe_allow_javascript=True)


def may_change(run: RunRecord) -> bool:
    """Whether this session may stop, resume, edit or delete ``run``: it can change things, and on a
    demo it launched the run (the engine refuses the others too)."""
    return can_change() and (not demo() or run.owner == identity())


def read_only_sentence(run: RunRecord) -> str:
    """Why this session may not change ``run`` (for a run where ``may_change`` is False)."""
    return f"Run #{run.id} is read-only here: " + ("another visitor launched it." if can_change() else refusal())


def engine_args() -> dict[str, Any]:
    """The ``owner`` and ``demo_mode`` arguments of the engine's launch, stop, resume and curation calls."""
    return {"owner": identity(), "demo_mode": demo()}


SIGN_IN_REFUSAL = "Sign in (sidebar) to launch, stop, edit, delete or import; viewing is open to everyone."
PASSWORD_REFUSAL = "Unlock the lab with its password (sidebar) to launch, stop, edit, delete or import; viewing is open."


def refusal() -> str:
    """The sentence shown when a change is asked for without access."""
    return SIGN_IN_REFUSAL if gate() == "oidc" else PASSWORD_REFUSAL


def _provider_problem() -> str | None:
    """Why a sign-in cannot start now, as a sentence; None when the provider's discovery document answers.

    ``st.login()`` only sends the browser to Streamlit's ``/auth/login``, which fetches
    ``server_metadata_url``; when that fails the person sees a bare "Authentication error" page.
    Fetching it here first (on the click only) turns that into a sentence in the sidebar.
    Named providers (``[auth.NAME]``) are not checked here.
    """
    missing = [name for name, module in (("Authlib", "authlib"), ("httpx", "httpx"))
               if importlib.util.find_spec(module) is None]
    if missing:  # Streamlit's /auth/login needs both (streamlit[auth]); without httpx it fails with a bare 500
        return (f"Sign-in needs the Python package(s) {' and '.join(missing)} on the server: "
                "pip install -r requirements.txt, then restart the lab.")
    url = (_secret("auth") or {}).get("server_metadata_url")
    if not url:
        return None
    try:
        with urllib.request.urlopen(str(url), timeout=PROVIDER_TIMEOUT_S) as response:
            document = json.load(response)
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts; a body that is not JSON
        reason = getattr(e, "reason", None) or e  # URLError wraps the socket's error
        reason = getattr(reason, "strerror", None) or reason  # "Connection refused", not "[Errno 111] ..."
        return (f"Sign-in is unavailable: the sign-in provider did not answer at {url} ({reason}). "
                "Viewing still works; try again later, or tell the lab's operator.")
    if not isinstance(document, dict) or "authorization_endpoint" not in document:
        return (f"Sign-in is unavailable: {url} is not an OpenID Connect discovery document "
                "(it has no authorization_endpoint); the lab's operator should check server_metadata_url.")
    return None


def _start_login() -> None:
    """``st.login()``, or a sentence in the sidebar when it cannot work (provider down, Authlib missing,
    incomplete ``[auth]``)."""
    problem = _provider_problem()
    if problem is None:
        try:
            st.login()
            return
        except st.errors.StreamlitAuthError as e:  # includes StreamlitMissingAuthlibError
            problem = f"Sign-in is not set up correctly: {' '.join(str(e).split())}"
    st.error(markdown_text(problem), icon=":material/error:")


def sidebar_login() -> None:
    """The sidebar's sign-in (OIDC), password field, or nothing for an open lab."""
    mode = gate()
    if mode == "open":
        return
    with st.sidebar:
        if mode == "oidc":
            if _logged_in():
                st.caption(f"Signed in as {markdown_text(identity())}")
                if st.button("Sign out", key="access_logout", icon=":material/logout:"):
                    st.logout()
            elif st.button("Sign in", key="access_login", icon=":material/login:"):
                _start_login()
            return
        if st.session_state.get(_UNLOCKED):
            st.caption("Unlocked: you can launch and change runs.")
            if st.button("Lock", key="access_lock", icon=":material/lock:"):
                st.session_state[_UNLOCKED] = False
                st.rerun()
            return
        typed = st.text_input("Lab password", type="password", key="access_password",
                              help="Needed to launch, stop, edit, delete or import; viewing is open.")
        if st.button("Unlock", key="access_unlock", icon=":material/lock_open:"):
            expected = str(_secret(PASSWORD_KEY, ""))
            if expected and hmac.compare_digest(typed.encode(), expected.encode()):
                st.session_state[_UNLOCKED] = True
                st.rerun()
            else:
                st.error("That is not the lab's password.")


__all__ = [
    "BROWSER_COOKIE", "browser_identity", "browser_token", "can_change", "demo", "engine_args", "gate", "identity",
    "may_change", "read_only_sentence", "refusal", "remember_browser", "sidebar_login",
]
