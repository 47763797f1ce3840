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

Wrong passwords are throttled (ui/throttle.py): after 5 in a row, each makes the next
try wait twice as long, counted per session and per client. The client is the
``X-Forwarded-For`` address when ``trusted_proxy = true`` in the secrets (or
``CONV3D_LAB_TRUSTED_PROXY=1``: set it only behind a proxy that sets that header,
e.g. deploy/Caddyfile, or anyone could pick their address), else the connection's
address (Streamlit reports none for loopback), else this browser's cookie identity.
Each wrong password is logged (logger ``conv3d_lab.access``, WARNING) with the
client key and the count.

``private = true`` in the secrets (or ``CONV3D_LAB_PRIVATE=1``) closes viewing too:
every page asks for the sign-in or the password first. A read-only share link
(``?share=TOKEN``, engine/hosting/share.py) opens exactly its view, and nothing else, to
anyone, even in a private lab; such a session's identity is a share actor, which
every engine call that changes state refuses (engine/actors.py).

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
import logging
import os
import re
import secrets as token_source
import urllib.request
from collections.abc import Mapping
from typing import Any

import streamlit as st

from engine import actors, settings
from engine.hosting import share as share_links
from engine.runs import RunRecord
from engine.store import open_store
from ui import throttle
from ui.text import markdown_text

LOG = logging.getLogger("conv3d_lab.access")

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
_THROTTLE_SESSION = "_access_throttle_session"
_SHARE_TOKEN = "_access_share_token"
TRUSTED_PROXY_KEY = "trusted_proxy"
TRUSTED_PROXY_ENV = "CONV3D_LAB_TRUSTED_PROXY"
PRIVATE_KEY = "private"
PRIVATE_ENV = "CONV3D_LAB_PRIVATE"
_TRUE = {"1", "true", "yes", "on"}


def _secret(name: str, default: Any = None) -> Any:
    """A top-level secret; ``default`` when there is no secrets file or no such key."""
    try:
        return st.secrets.get(name, default)
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return default


def _demo_secrets() -> dict[str, Any]:
    """The top-level secrets that are demo settings ("demo", "demo_max_epochs", "demo_model", ...)."""
    try:
        return {key: value for key, value in st.secrets.items() if key == "demo" or key.startswith("demo_")}
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return {}


def demo_settings() -> settings.DemoSettings:
    """The hosted demo's flag, caps and pinned model from the lab's one settings source
    (``engine.settings.demo_settings``: the secrets, else the environment, else the defaults). The secrets
    are handed to the engine too, so its own checks in this script run (a launch's caps) read the same."""
    settings.dashboard_secrets(_demo_secrets())
    return settings.demo_settings()


def demo() -> bool:
    """Whether this lab is a hosted demo: ``demo = true`` in the secrets, else ``$CONV3D_LAB_DEMO``."""
    return demo_settings().enabled


def _flag(key: str, env: str) -> bool:
    """A yes/no secret, else the environment variable ``env``."""
    value = _secret(key)
    if value is None:
        value = os.environ.get(env, "")
    return str(value).strip().lower() in _TRUE


def private() -> bool:
    """Whether viewing needs the sign-in or the password too (``private = true`` / ``$CONV3D_LAB_PRIVATE``)."""
    return _flag(PRIVATE_KEY, PRIVATE_ENV)


def trusted_proxy() -> bool:
    """Whether the lab sits behind a proxy whose ``X-Forwarded-For`` names the client."""
    return _flag(TRUSTED_PROXY_KEY, TRUSTED_PROXY_ENV)


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
    """Whether this session may launch, stop, edit, delete and import (never a share link's session)."""
    if _SHARE_TOKEN in st.session_state:  # opened by a share link: read-only, valid or not
        return False
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
    (kept across reloads by ``remember_browser``; of this session only when there is no browser).
    A share link's session is a share actor, which the engine refuses every change."""
    if _SHARE_TOKEN in st.session_state:
        try:
            return actors.share_actor(share_links.token_id_of(st.session_state[_SHARE_TOKEN]))
        except share_links.ShareLinkError:
            return actors.share_actor("unreadable")
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


def may_view() -> bool:
    """Whether this session may see the lab's pages (a private lab: only after the sign-in or the password)."""
    return not private() or can_change()


def may_change_dataset(name: str) -> bool:
    """Whether this session may delete or replace the imported dataset ``name`` (the engine checks it too)."""
    from engine import datasets

    return can_change() and datasets.may_change_imported(name, identity(), demo())


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


# ------------------------------------------------------------ share links
def share_token() -> str | None:
    """The share token this session was opened with (``?share=``), remembered for the session's life."""
    token = st.query_params.get(share_links.QUERY_PARAM)
    if token:
        st.session_state[_SHARE_TOKEN] = token
    return st.session_state.get(_SHARE_TOKEN)


def shared_view() -> share_links.ShareView | None:
    """The view this session's share link opens (checked again on every script run, so a link stops at its
    expiry or revocation); None for an ordinary session. ``ShareLinkError`` for a link that does not open."""
    token = st.session_state.get(_SHARE_TOKEN)
    if token is None:
        return None
    return share_links.verify(token, open_store())


def share_url(kind: str, ids) -> tuple[str, share_links.ShareView]:
    """A new read-only link to ``kind`` of ``ids`` (default lifetime), at the address this lab is served at."""
    token, view = share_links.mint(kind, ids, open_store())
    return share_links.link(token, _lab_url()), view


def _lab_url() -> str | None:
    """The lab's root address as this browser reached it (scheme, host and Streamlit's base path)."""
    try:
        url = st.context.url
    except RuntimeError:
        url = None
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    base_path = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{parts.scheme}://{parts.netloc}" + (f"/{base_path}" if base_path else "")


def share_button(kind: str, ids, key: str) -> None:
    """A "Share read-only link" button that shows a new link to ``kind`` of ``ids`` as text to copy."""
    ids = [int(i) for i in ids]
    if not ids or _SHARE_TOKEN in st.session_state:
        return
    if st.button("Share read-only link", key=key, icon=":material/share:",
                 help="A link that shows this view, read-only, to anyone who has it, for "
                      f"{share_links.DEFAULT_DAYS:g} days (also without the password or a sign-in)."):
        if not can_change():
            st.error(markdown_text(refusal()), icon=":material/lock:")
            return
        try:
            url, view = share_url(kind, ids)
        except share_links.ShareLinkError as e:
            st.error(markdown_text(e), icon=":material/error:")
            return
        st.session_state[f"{key}_link"] = (url, view.title, view.expires_text, view.token_id)
    shown = st.session_state.get(f"{key}_link")
    if shown:
        st.code(shown[0], language=None, wrap_lines=True)
        st.caption(f"{shown[1]}, read-only, until {shown[2]}. The operator revokes it with "
                   f"`python -m engine share revoke {shown[3]}`.")


SIGN_IN_REFUSAL = "Sign in (sidebar) to launch, stop, edit, delete or import; viewing is open to everyone."
PASSWORD_REFUSAL = "Unlock the lab with its password (sidebar) to launch, stop, edit, delete or import; viewing is open."


def refusal_to_view() -> str:
    """What a private lab says to a session that has not signed in or unlocked it."""
    how = "Sign in" if gate() == "oidc" else "Unlock the lab with its password"
    return f"This lab is private: {how} (sidebar) to see it. A read-only share link opens its own view without either."


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
                              help="Needed to launch, stop, edit, delete or import"
                                   + ("." if private() else "; viewing is open."))
        clicked = st.button("Unlock", key="access_unlock", icon=":material/lock_open:")
        keys = _throttle_keys()
        wait = throttle.THROTTLE.wait_s(keys)
        if wait > 0:  # a try during the wait is refused before the password is compared
            st.warning(throttle.wait_sentence(wait, throttle.THROTTLE.clock()), icon=":material/hourglass_top:")
        elif clicked:
            _try_password(typed, keys)


def _client_key() -> str | None:
    """Who is trying passwords, across sessions: the proxy's ``X-Forwarded-For`` client when trusted, else the
    connection's address, else this browser's cookie identity; None without a browser (AppTest)."""
    try:
        headers = st.context.headers
        if not headers:
            return None
        if trusted_proxy() and headers.get("X-Forwarded-For"):
            # The proxy appends the address it saw; earlier entries are whatever the client sent.
            return "client:" + headers.get("X-Forwarded-For").split(",")[-1].strip()[:64]
        if st.context.ip_address:
            return "client:" + st.context.ip_address
    except RuntimeError:  # no Streamlit runtime at all
        return None
    token = _browser_token_of_session()
    return None if token is None else "browser:" + browser_identity(token)


def _throttle_keys() -> list[str]:
    session = st.session_state.setdefault(_THROTTLE_SESSION, token_source.token_hex(6))
    client = _client_key()
    return [f"session:{session}"] + ([client] if client else [])


def _try_password(typed: str, keys: list[str]) -> None:
    expected = str(_secret(PASSWORD_KEY, ""))
    if expected and hmac.compare_digest(typed.encode(), expected.encode()):
        throttle.THROTTLE.succeeded(keys)
        st.session_state[_UNLOCKED] = True
        st.rerun()
    failures, wait = throttle.THROTTLE.failed(keys)
    LOG.warning("Wrong lab password from %s: %d wrong in a row; the next try waits %.0f s.",
                " / ".join(keys), failures, wait)
    st.error("That is not the lab's password." + (
        " " + throttle.wait_sentence(wait, throttle.THROTTLE.clock()) if wait > 0 else ""))


__all__ = [
    "BROWSER_COOKIE", "browser_identity", "browser_token", "can_change", "demo", "engine_args", "gate", "identity",
    "may_change", "may_change_dataset", "may_view", "private", "read_only_sentence", "refusal", "remember_browser",
    "share_button", "share_token", "share_url", "shared_view", "sidebar_login", "trusted_proxy",
]
