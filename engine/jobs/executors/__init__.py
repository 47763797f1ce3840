"""Executors: what starts, stops and watches the processes that train queued runs.

``base`` holds the interface (submit, stop, is_alive, reconcile) and which executor the lab uses
(``CONV3D_LAB_EXECUTOR=local|ray``); ``local`` is the single-machine default (detached workers on slots,
the warm standby: engine/jobs/control.py); ``ray_executor`` runs each claimed run as a Ray actor on a
cluster (``RAY_ADDRESS``). Nothing above engine/jobs knows which one runs a run: launch, stop, resume,
folds and sweeps go through engine/jobs/control.py, which dispatches here.
"""

from __future__ import annotations

import os

from engine.errors import LabError
from engine.machine.devices import slots
from engine.jobs.executors.base import EXECUTOR_ENV, EXECUTORS, RAY_SLOT_PREFIX, Executor
from engine.runs import RunRecord


def selected_name() -> str:
    """``$CONV3D_LAB_EXECUTOR`` (default ``local``); a sentence when it names no executor."""
    name = (os.environ.get(EXECUTOR_ENV) or "local").strip().lower()
    if name not in EXECUTORS:
        raise LabError(f"{EXECUTOR_ENV} is {name!r}; set it to one of {', '.join(EXECUTORS)} or unset it (local).")
    return name


def selected_cluster() -> Executor | None:
    """The cluster executor the lab submits to (``CONV3D_LAB_EXECUTOR=ray``), or None for the local one."""
    if selected_name() == "ray":
        from engine.jobs.executors import ray_executor

        return ray_executor.RayExecutor.shared()
    return None


def for_run(run: RunRecord) -> Executor | None:
    """The cluster executor that runs ``run`` (by its slot), or None when it is the local one's."""
    if run.slot and run.slot.startswith(RAY_SLOT_PREFIX):
        from engine.jobs.executors import ray_executor

        return ray_executor.RayExecutor.shared()
    return None


def concurrency() -> int:
    """How many runs the selected executor trains at once (local: its slots; ray: its max_concurrent)."""
    cluster = selected_cluster()
    return len(cluster.slot_names()) if cluster is not None else len(slots())


__all__ = ["EXECUTOR_ENV", "EXECUTORS", "Executor", "concurrency", "for_run", "selected_cluster", "selected_name"]
