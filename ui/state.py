"""Widget state: one home for seeding a widget's value and for keeping it in step with the URL.

Streamlit keeps a widget's value in Session State under its ``key``. A page gives a widget its
starting value by writing that key before the widget is drawn (``seed``): setting the value, rather
than deleting the key, also moves the widget in the browser when another run or sample makes the
remembered value invalid. A value a copied link must reproduce also lives in ``st.query_params``:
``seed_from_url`` reads it when the URL changed since the page last wrote it (a shared link, a
reload, a switch from another page), and ``write_url`` writes the widget's value back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def seed(key: str, default: Any, keep: Callable[[Any], bool] = lambda value: True) -> None:
    """Give the widget ``key`` its starting value ``default``, replacing a remembered one that ``keep`` rejects."""
    if key not in st.session_state or not keep(st.session_state[key]):
        st.session_state[key] = default


def url_seen_key(param: str) -> str:
    """The Session State key that remembers the URL value of ``param`` the page last wrote."""
    return f"_url_seen_{param}"


def url_changed(key: str, param: str, url_value: str | None) -> bool:
    """Whether the widget ``key`` is new or the URL's ``param`` changed since the page wrote it."""
    return key not in st.session_state or st.session_state.get(url_seen_key(param)) != url_value


def seed_from_url(key: str, param: str, parse: Callable[[str], Any], default: Any,
                  valid: Callable[[Any], bool]) -> None:
    """Put the URL's value of ``param`` into the widget ``key`` when the URL changed since the page wrote it
    (or the widget is new); keep the widget's own value otherwise. Invalid values fall back to ``default``."""
    url_value = st.query_params.get(param)
    if url_changed(key, param, url_value):
        try:
            value = parse(url_value) if url_value is not None else default
        except (TypeError, ValueError):
            value = default
        st.session_state[key] = value if valid(value) else default
    elif not valid(st.session_state[key]):
        st.session_state[key] = default


def write_url(param: str, text: str) -> None:
    """The widget's value into the URL (the parameter is dropped when empty), remembered as written."""
    if text:
        st.query_params[param] = text
    elif param in st.query_params:
        del st.query_params[param]
    st.session_state[url_seen_key(param)] = text or None


__all__ = ["seed", "seed_from_url", "url_changed", "url_seen_key", "write_url"]
