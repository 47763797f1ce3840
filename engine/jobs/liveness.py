"""Is a run's process alive? The one answer that reconcile, stop and a starting worker share."""

from __future__ import annotations

import socket

from engine.jobs import processes, standby
from engine.machine.devices import FOREGROUND_SLOT
from engine.runs import RunRecord


def _command(run: RunRecord) -> tuple[str, ...]:
    """What the run's process command line must contain: ``python -m engine worker ID`` for a worker,
    ``python -m engine ...`` (train, lr-find) for a run held in the foreground."""
    if run.slot == FOREGROUND_SLOT:
        return ("-m", "engine")
    return ("worker", str(run.id))


def on_this_host(run: RunRecord) -> bool:
    return run.host == socket.gethostname()


def process_alive(run: RunRecord, pid: int | None = None) -> bool:
    """Whether ``pid`` (default: the run's recorded pid) is alive on this host and is the run's process:
    ``python -m engine worker ID``, the warm standby of the run's slot that claimed it
    (``python -m engine.jobs.standby_main SLOT``), or ``python -m engine ...`` for a foreground run.
    A suspended (SIGSTOP) process is alive: it may continue, so its run is never given to another."""
    pid = run.pid if pid is None else pid
    if not pid:
        return False
    if processes.pid_alive(pid, expect=_command(run)):
        return True
    if not run.slot or run.slot == FOREGROUND_SLOT:
        return False
    return processes.pid_alive(pid, expect=standby.command_marker(run.slot))


__all__ = ["on_this_host", "process_alive"]
