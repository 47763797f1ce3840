"""Shared test set-up: make the repository root importable under a bare `pytest`."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Where PYTHONDONTWRITEBYTECODE is set (this machine and CI set it), every session would compile the lab's
# modules again, and pytest would rewrite the asserts of every test module again: 7 s of the inner loop's
# 18 s of collection. The test session and the processes it starts keep their bytecode (__pycache__ is
# git-ignored).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from engine.jobs.worker import TEST_WORKER_ENV  # noqa: E402  (the repository root is importable from here)
from tests import tiers  # noqa: E402

# The worker's one testing entry point (engine/jobs/worker.py): every worker, standby and foreground
# `engine train` a test starts loads tests/fake_worker.py, which does nothing unless a test sets one
# of its variables (a held run without TensorFlow, slow or failing batches).
os.environ[TEST_WORKER_ENV] = "tests.fake_worker"


def _lighter_apptest() -> None:
    """Two costs every AppTest run pays in a test process and never in the dashboard's own:

    - after each script run Streamlit clears Keras' session (a full garbage collection of a heap that
      holds TensorFlow) when ``keras`` is imported. The dashboard never imports it (tests/dashboard/
      test_dashboard_no_tensorflow.py); the tests that train in this process do, and made every later
      AppTest run twice as slow (a second per run);
    - each new AppTest scans the metadata of every installed package for Streamlit components (0.7 s);
      the installed packages do not change during a test session, so the first scan is kept.

    Both are Streamlit internals: where a version lacks them, nothing is changed.
    """
    from streamlit.components.v2 import manifest_scanner
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = lambda: None
    if hasattr(manifest_scanner, "scan_component_manifests"):
        manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_lighter_apptest()


@pytest.hookimpl(tryfirst=True)  # before -m selects: the tiers' worker marks must be on the items by then
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The test tiers (docs/testing.md): mark the tests listed in tests/tiers.py ``worker``, and leave
    ``slow`` tests out unless the -m expression names slow (a -m on the command line replaces the one
    in pytest.ini, so the inner loop's -m "not e2e and not worker" must not bring the benchmarks back)."""
    for item in items:
        if tiers.is_worker_test(item.nodeid):
            item.add_marker(pytest.mark.worker)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


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
