"""The local executor: detached worker processes on this machine's slots, with the warm standby.

The single-machine default and the lab's behaviour before executors existed. Its code stays where it
was (engine/jobs/control.py: ``schedule_here``, ``terminate_here``, the pid checks of reconcile); this
class presents it through the executor interface, for code that holds an executor (the benchmark, tests).
"""

from __future__ import annotations

from engine.jobs import control, liveness
from engine.machine.devices import slots
from engine.jobs.executors.base import Executor
from engine.runs import RunRecord
from engine.store import RunStore


class LocalExecutor(Executor):
    name = "local"

    def slot_names(self) -> list[str]:
        return slots()

    def submit(self, store: RunStore) -> list[int]:
        return control.schedule_here(store)

    def stop(self, store: RunStore, run: RunRecord) -> str:
        return control.terminate_here(store, run, grace_s=0.0)

    def is_alive(self, run: RunRecord) -> bool:
        return liveness.on_this_host(run) and liveness.process_alive(run)

    def reconcile(self, run: RunRecord, now: float) -> str | None:
        return control._why_gone(run, now)


__all__ = ["LocalExecutor"]
