"""Fixtures for AppTest tests of the dashboard: a store with fake runs, a fast model probe."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import paths
from engine.store import open_store
from fake_lab import FAKE_DESCRIPTION, texts
from tests.fake_runs import fake_run

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "streamlit_app.py"
# Seconds an AppTest run may take (the first Train page run generates a dataset).
APP_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def no_standby(monkeypatch):
    """The Home and Train pages start a warm standby worker (a real process that imports
    TensorFlow); these tests use fake runs, so none is started (children inherit this too)."""
    monkeypatch.setenv("CONV3D_LAB_STANDBY", "0")


@pytest.fixture
def fake_probe(monkeypatch):
    """engine.probe.describe_model answers at once (the real one starts TensorFlow in a child process)."""
    from engine import probe

    calls = []

    def describe_model(model_config, input_shape, num_classes, batch_size=32):
        calls.append((model_config, tuple(input_shape), num_classes, batch_size))
        return dict(FAKE_DESCRIPTION, architecture=model_config["architecture"])

    monkeypatch.setattr(probe, "describe_model", describe_model)
    return calls


# The built-in sets the pages open by default (the Data and Train pages' first choices): generated once
# per session (digits3d takes 0.7 s, phantom_lesions 2.3 s; some 70 dashboard tests open one) and linked
# into each test's empty data cache. Tests about generation use shapes3d or other options, never shared.
SHARED_BUILTINS = ("digits3d-", "phantom_lesions-")


@pytest.fixture(scope="session")
def builtin_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("builtin-cache")


@pytest.fixture
def store(lab_home, fake_probe, builtin_cache):
    import streamlit as st

    st.cache_data.clear()  # previews and descriptions of another test's workspace
    cache = paths.data_cache_dir()
    for entry in builtin_cache.iterdir():
        shutil.copytree(entry, cache / entry.name, copy_function=os.link)
    yield open_store()
    for entry in cache.iterdir() if cache.exists() else ():
        shared = builtin_cache / entry.name
        if entry.name.startswith(SHARED_BUILTINS) and (entry / "meta.json").exists() and not shared.exists():
            shutil.copytree(entry, shared, copy_function=os.link)


@pytest.fixture
def app(store):
    """Open a page of the app: ``app("app_pages/runs.py", runs="1,2")`` -> an AppTest that has run it."""

    def open_page(page: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
        at.query_params.update(query)
        at.run()
        if page:
            at.switch_page(page)
            at.query_params.update(query)
            at.run()
        return at

    return open_page


@pytest.fixture
def make_run(store):
    """``make_run("finished", epochs_done=3)`` -> run id (see tests/fake_runs.fake_run)."""
    return lambda status, **kwargs: fake_run(store, status, **kwargs)


@pytest.fixture
def page_text():
    return texts
