"""End-to-end fixtures: the real dashboard server on a free port and headless Chromium.

The server, its workers and their helpers all run with CONV3D_LAB_HOME in this
test's tmp_path; at teardown every process whose environment names that
workspace is ended (and the test fails if one survives), so nothing is
orphaned.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import workspace_processes

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60


def wait_for_app(page) -> None:
    """Until the script run triggered by the last interaction has finished."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"],"
        " [data-testid=\"stStatusWidgetRunningManIcon\"], [data-stale=\"true\"]')",
        timeout=120_000,
    )


def set_number(page, key: str, value) -> None:
    """Type ``value`` into the number input with widget key ``key`` and wait for the rerun."""
    field = page.locator(f".st-key-{key} input")
    field.fill(str(value))
    field.press("Enter")
    wait_for_app(page)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the dashboard server did not answer {url}/_stcore/health within {timeout_s} s")


def processes_of_workspace(home: Path) -> list[int]:
    """Pids of live processes (not zombies) whose environment has CONV3D_LAB_HOME=home."""
    return [pid for pid, _ in workspace_processes(home)]


def _end_workspace_processes(home: Path) -> list[int]:
    """Stop the workspace's runs through the engine, then SIGTERM / SIGKILL what is left."""
    try:
        from engine import jobs
        from engine.runs import ACTIVE_STATUSES
        from engine.store import open_store

        store = open_store()
        for run in store.list_runs(statuses=list(ACTIVE_STATUSES)):
            jobs.stop(run.id, store=store, wait=True, grace_s=3.0)
    except Exception as e:  # teardown must go on to the signals below
        print(f"stopping runs at teardown failed: {e!r}")
    for signum, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.0)):
        pids = processes_of_workspace(home)
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        if pids:
            time.sleep(pause)
    return processes_of_workspace(home)


@pytest.fixture
def dashboard_env() -> dict[str, str]:
    """Extra environment of the server and so of its workers; a test overrides it with
    ``@pytest.mark.parametrize("dashboard_env", [{...}])`` (e.g. a training test hook)."""
    return {}


@pytest.fixture
def dashboard_args() -> list[str]:
    """Extra ``streamlit run`` options (e.g. ``["--secrets.files", path]``, so a test's secrets never
    land in the repository's ``.streamlit/``); a test module overrides this fixture."""
    return []


def start_dashboard(env: dict[str, str], log_path: Path, args: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``streamlit run streamlit_app.py`` on a free loopback port, in its own session, logging to
    ``log_path``; returns the process and its base URL once ``/_stcore/health`` answers."""
    port = _free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", *args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, process, SERVER_START_TIMEOUT_S)
    except BaseException:
        stop_dashboard(process)
        raise
    return process, url


def stop_dashboard(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture
def dashboard(lab_home, tmp_path, dashboard_env, dashboard_args):
    """The real server (``streamlit run streamlit_app.py``) on a free port; yields its base URL."""
    log_path = tmp_path / "streamlit.log"
    started = time.perf_counter()
    process, url = start_dashboard({**os.environ, "PYTHONUNBUFFERED": "1", **dashboard_env}, log_path, dashboard_args)
    try:
        print(f"\ndashboard server healthy after {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        stop_dashboard(process)
        left = _end_workspace_processes(lab_home)
        server_log = log_path.read_text(errors="replace")
        if "Traceback" in server_log:
            print("server log:\n" + server_log[-4000:])
        assert not left, f"processes of the test workspace survived teardown: {left}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser_page(request):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (tools/install-test-deps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.set_default_timeout(30_000)
            yield page
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                path = ARTIFACTS / f"failed-{request.node.name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot of the failure: {path}")
        finally:
            browser.close()
