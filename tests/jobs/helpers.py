"""Helpers of the jobs tests: tiny configs, polling, and finding a lab's processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from engine.config import RunConfig
from engine.runs import ENDED_STATUSES
from tests.processes import workspace_processes

# Generous: a real worker imports TensorFlow (about 5 s alone, more on a busy 2-core machine).
WORKER_TIMEOUT_S = 150.0


def tiny_config(epochs: int = 2, **training) -> RunConfig:
    """A run that trains in well under a second per epoch: 48 volumes of 12^3, a quarter-width tutorial net."""
    return RunConfig.from_dict(
        {
            "data": {"dataset": "shapes3d", "options": {"num_samples": 48}},
            "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
            "training": {"epochs": epochs, "batch_size": 8, **training},
        }
    )


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def wait_ended(store, run_id: int, timeout_s: float = WORKER_TIMEOUT_S) -> dict:
    return wait_for(
        lambda: (run := store.get_run(run_id)).status in ENDED_STATUSES and run,
        timeout_s,
        f"run {run_id} to end",
    )


def lab_processes(home: Path) -> list[tuple[int, str]]:
    """(pid, command line) of live `engine` processes started for the lab at ``home``."""
    return [(pid, command) for pid, command in workspace_processes(home) if "engine" in command]
