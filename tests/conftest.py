"""Shared test set-up: make the repository root importable under a bare `pytest`."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    """An empty lab workspace (database, run folders, dataset cache) under tmp_path.

    Set through the environment so worker subprocesses and a streamlit server
    started by a test see the same workspace.
    """
    home = tmp_path / "lab"
    point_workspace(monkeypatch, home, tmp_path / "data-cache")
    return home


def point_workspace(patch: pytest.MonkeyPatch, runs: Path, data: Path) -> None:
    """Point the lab (this process and the workers it starts) at ``runs`` and ``data``, on the default SQLite store."""
    patch.setenv("CONV3D_LAB_HOME", str(runs))
    patch.setenv("CONV3D_LAB_DATA", str(data))
    patch.delenv("CONV3D_LAB_DB", raising=False)


# A private PostgreSQL server (skipped where it is not installed): tests/store/postgres.py.
from tests.store.postgres import postgres_server, postgres_url, store_url  # noqa: E402,F401
