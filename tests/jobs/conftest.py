"""Fixtures of the jobs tests: a clean lab per test and a guard against orphan processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine.jobs import processes, standby
from engine.machine.devices import SLOTS_ENV
from engine.store import open_store
from tests import fake_worker
from tests.jobs.helpers import lab_processes


@pytest.fixture(autouse=True)
def jobs_lab(lab_home, monkeypatch):
    """A fresh lab with one slot and no test hooks set; afterwards, no worker may be left running."""
    monkeypatch.setenv(SLOTS_ENV, "1")
    # No warm standby unless a test asks for one (tests/jobs/test_standby.py): workers start
    # one when their run ends, and it would idle here for minutes.
    monkeypatch.setenv(standby.STANDBY_ENV, "0")
    for name in fake_worker.ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield lab_home
    # Workers hand over and exit a moment after their run ends; give them that moment.
    deadline = time.monotonic() + 20
    while lab_processes(lab_home) and time.monotonic() < deadline:
        processes.reap_children()
        time.sleep(0.2)
    left = lab_processes(lab_home)
    for pid, _command in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    processes.reap_children()
    assert not left, f"processes left behind (now killed): {left}"


@pytest.fixture
def store(jobs_lab, store_url):
    """The lab's store: SQLite, or each backend for a test marked ``on_both_stores`` (tests/store/postgres.py)."""
    return open_store(store_url)
