"""User strings are rendered as text: Markdown and HTML payloads in run names, class names and
error messages produce no link, image or HTML element on the Home, Runs and Inspect pages.

The checks read the element protos AppTest receives: every Markdown source (bodies and labels)
is parsed with a CommonMark parser (raw HTML on) and must yield no link, image or HTML token,
and must not hold the payload's address unescaped (a bare ``https://`` would become a GFM
autolink); every Plotly figure's strings must hold no tag from the payload (its text is there as
entities, so the legend reads literally).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.fake_runs import predictions_run
from ui.text import markdown_text, plotly_text, unescape_markdown

PAYLOAD = (
    '[click me](https://evil.example/phish) ![t](https://evil.example/pixel.png) '
    '<a href="https://evil.example/a">a</a> <b>bold</b> <img src="https://evil.example/i.png"> '
    '**strong** :red[red] $x$ www.evil.example mail@evil.example'
)
# Proto fields that are Markdown in Streamlit (bodies and labels); option lists and cell values are plain text.
MARKDOWN_FIELDS = {"body", "label", "text"}
FORBIDDEN_TOKENS = {"link_open", "image", "html_inline", "html_block"}
# What remark-gfm turns into a link inside plain text: a scheme, "www." or an e-mail address.
AUTOLINK_LITERAL = re.compile(r"(?i)(?:https?|ftp)://|\bwww\.|[\w.+-]@[\w-]+\.")
PARSER = MarkdownIt("commonmark", {"html": True}).enable("strikethrough")
INSPECT_PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "inspect.py")


def _strings(value, key=""):
    """(field name, string) of every string in a proto dict, recursively."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str):
        yield key, value


def _protos(node):
    proto = getattr(node, "proto", None)
    if proto is not None:
        yield type(node).__name__, MessageToDict(proto)
    for child in getattr(node, "children", {}).values():
        yield from _protos(child)


def _markup_from(source: str) -> list[str]:
    """What a Markdown source makes besides text: forbidden tokens, and a bare address (a GFM autolink)."""
    found = []
    for token in PARSER.parse(source):
        for item in [token, *(token.children or [])]:
            if item.type in FORBIDDEN_TOKENS:
                found.append(item.type)
            # Streamlit's GFM autolinks are found in the parsed text (escapes are gone by then).
            if item.type == "text" and AUTOLINK_LITERAL.search(item.content):
                found.append("autolink literal")
    if "evil.example" in source:
        found.append("unescaped address")
    return found


def _figure_strings(spec: str) -> list[str]:
    return [text for _, text in _strings(json.loads(spec))]


def assert_user_strings_are_text(at: AppTest) -> int:
    """No link, image or HTML from a user string anywhere on the page; returns how many sources held the payload."""
    assert not at.exception, [e.value for e in at.exception]
    seen = 0
    for kind, proto in _protos(at._tree):
        if kind == "Json":  # st.json's viewer shows every key and value as text, never as Markdown
            continue
        for field, text in _strings(proto):
            if field == "spec":  # a Plotly figure as JSON
                for figure_text in _figure_strings(text):
                    assert not any(tag in figure_text for tag in ("<a", "<b>", "<img")), figure_text
                    seen += "&lt;b&gt;bold&lt;/b&gt;" in figure_text
            elif field in MARKDOWN_FIELDS and "click me" in text:
                seen += 1
                assert _markup_from(text) == [], (field, text)
    return seen


def test_markdown_text_renders_as_its_own_text():
    source = markdown_text(PAYLOAD)
    assert _markup_from(source) == []
    assert unescape_markdown(source) == PAYLOAD
    rendered = PARSER.render(source)
    assert "<a " not in rendered and "<img" not in rendered and "<b>" not in rendered


def test_plotly_text_escapes_the_html_subset():
    assert plotly_text('<a href="x">a</a> & <b>') == '&lt;a href="x"&gt;a&lt;/a&gt; &amp; &lt;b&gt;'


def test_home_and_runs_show_payload_names_and_errors_as_text(app, make_run, store):
    finished = make_run("finished", epochs_done=3, name=PAYLOAD, batches=2)
    failed = make_run("failed", epochs_done=1, name="plain", error="It broke: " + PAYLOAD,
                      traceback="Traceback " + PAYLOAD)
    at = app()
    assert assert_user_strings_are_text(at) >= 1  # the recent-runs link
    at = app("app_pages/runs.py", runs=f"{finished},{failed}")
    # The run title and the error (Markdown), the curves' and batch-loss legends (Plotly).
    assert assert_user_strings_are_text(at) >= 4
    assert at.multiselect(key="runs_selected").format_func(finished) == f"#{finished} {PAYLOAD}"  # plain text


@pytest.fixture
def inspect_store(store):
    import streamlit as st

    st.cache_resource.clear()
    return store


def test_inspect_shows_payload_run_and_class_names_as_text(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, val_size=20, test_size=10, epochs=2)
    inspect_store.update_run(run_id, name=PAYLOAD, class_names=[PAYLOAD, "<b>bold</b> [x](https://evil.example/2)"])
    at = AppTest.from_file(INSPECT_PAGE, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    # The threshold label, the sample line, the confusion matrices' axes, ROC/PR and distribution legends.
    assert assert_user_strings_are_text(at) >= 5
