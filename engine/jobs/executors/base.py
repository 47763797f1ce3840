"""The executor interface, and which executor runs the lab's queued runs.

The queue itself stays in the store (``claim_next_queued``: one atomic transaction, never more running
runs than slots), whatever the executor. An executor names its slots, starts a process for each run it
claims (``submit``), ends one whose cooperative stop did not end it (``stop``), and says whether a run's
process lives (``is_alive``) and, if not, why (``reconcile``).

``CONV3D_LAB_EXECUTOR`` picks it (engine/jobs/executors/__init__.py): ``local`` (default) or ``ray``. Runs
remember theirs through their slot name: a Ray slot is ``ray-<n>``, so a stop or reconcile from any process
reaches the executor that runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from engine.runs import RunRecord

if TYPE_CHECKING:
    from engine.store import RunStore

EXECUTOR_ENV = "CONV3D_LAB_EXECUTOR"
EXECUTORS = ("local", "ray")
# The slot names of runs on Ray start with this (engine/jobs/executors/ray_executor.py).
RAY_SLOT_PREFIX = "ray-"


class Executor(ABC):
    """Starts and watches the processes of claimed runs. Every method is quick (no TensorFlow here)."""

    name: str

    @abstractmethod
    def slot_names(self) -> list[str]:
        """The slots runs are claimed on: at most this many of this executor's runs are running at once."""

    @abstractmethod
    def submit(self, store: RunStore) -> list[int]:
        """Claim queued runs on free slots and start a process for each; returns their ids."""

    @abstractmethod
    def stop(self, store: RunStore, run: RunRecord) -> str:
        """End the process of ``run``, whose cooperative stop (the store flag) did not end it; returns how
        it ended ("was terminated", "was cancelled on Ray", ...) for the run's error sentence."""

    @abstractmethod
    def is_alive(self, run: RunRecord) -> bool:
        """Whether the process of the ``running`` run ``run`` lives (or may: it is not known to be gone)."""

    @abstractmethod
    def reconcile(self, run: RunRecord, now: float) -> str | None:
        """Why the ``running`` run ``run`` has no live process (reconcile marks it ``interrupted`` with this
        reason), or None when it has one or may have."""


__all__ = ["EXECUTOR_ENV", "EXECUTORS", "Executor", "RAY_SLOT_PREFIX"]
