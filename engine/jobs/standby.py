"""Warm standby workers: which one waits on a slot, and starting one (the process itself is
engine/jobs/standby_main.py).

Importing TensorFlow and Keras takes about 6 s on a small CPU machine, which
would otherwise sit between a click on Launch and the first epoch. So the
dashboard (and every worker that ends) calls ``ensure_standby``: for the
first slot it starts ``python -m engine.jobs.standby_main SLOT`` (detached, its
own session, output in ``<lab home>/standby-<slot>.log``) unless a live one
exists. The standby writes ``<lab home>/standby-<slot>.pid``, imports
TensorFlow, Keras and ``engine.training``, warms Keras up with a tiny fit,
then polls the queue every 0.2 s with the real, atomic
``Store.claim_next_queued([slot])``. When it claims a run it removes its
pidfile (so a fresh standby can be started), sends its output to the run's
``worker.log`` and becomes that run's worker, exactly as ``run_worker`` does
after a claim; it exits when the run ends. One run per standby.

``schedule`` leaves a slot with a live standby to the standby. A standby
leaves after ``CONV3D_LAB_STANDBY_IDLE_S`` idle seconds (default 600), on
SIGTERM, or when its pidfile no longer names it; before it goes it removes
its pidfile and claims once more, so a run queued meanwhile is never left
waiting. ``CONV3D_LAB_STANDBY=0`` turns standbys off (every run then starts
a cold worker). The worker's testing module (``CONV3D_LAB_TEST_WORKER``) may say
that a standby imports no TensorFlow (the tests' held runs).
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from pathlib import Path

from engine import paths
from engine.jobs import processes
from engine.machine.devices import slots

STANDBY_ENV = "CONV3D_LAB_STANDBY"
MODULE = "engine.jobs.standby_main"


def enabled() -> bool:
    return os.environ.get(STANDBY_ENV, "1").strip() != "0"


def pidfile_path(slot: str) -> Path:
    return paths.lab_home() / f"standby-{slot}.pid"


def log_path(slot: str) -> Path:
    return paths.lab_home() / f"standby-{slot}.log"


def command_marker(slot: str) -> tuple[str, ...]:
    """What a standby's command line contains (checked with processes.pid_alive)."""
    return (MODULE, str(slot))


def _read_pidfile(slot: str) -> tuple[int | None, bool]:
    """(pid, warm) from the pidfile: "PID" while the standby starts, "PID warm" once it is ready."""
    try:
        parts = pidfile_path(slot).read_text().split()
        return int(parts[0]), parts[1:] == ["warm"]
    except (OSError, ValueError, IndexError):
        return None, False


def read_pid(slot: str) -> int | None:
    return _read_pidfile(slot)[0]


def warm_standby(slot: str | None = None) -> int | None:
    """The pid of a live standby of ``slot`` (default: the first) that has finished warming up, or None."""
    slot = slot or slots()[0]
    pid, warm = _read_pidfile(slot)
    if warm and pid and processes.pid_alive(pid, expect=command_marker(slot)):
        return pid
    return None


def live_standby(slot: str) -> int | None:
    """The pid of the live standby of ``slot`` (named by its pidfile), or None."""
    pid = read_pid(slot)
    if pid and processes.pid_alive(pid, expect=command_marker(slot)):
        return pid
    return None


def ensure_standby(store=None) -> int | None:
    """Make sure a warm standby waits on the first slot; returns its pid (None when standbys are off).

    Cheap when one is alive (a pidfile read and a /proc check). ``store``
    selects the database the standby claims from (default: the lab's).
    """
    if not enabled():
        return None
    slot = slots()[0]
    pid = live_standby(slot)
    if pid:
        return pid
    if store is None:
        from engine.store import open_store

        store = open_store()
    # The pidfile is written here (and again by the standby itself), so a
    # second caller right after this one sees the standby and starts nothing.
    lock_path = pidfile_path(slot).with_suffix(".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = live_standby(slot)
        if pid:
            return pid
        process = processes.spawn_detached(
            [sys.executable, "-m", MODULE, str(slot)],
            processes.child_environment(store.url, slot),
            log_path(slot),
            f"warm standby for slot {slot}",
        )
        write_pidfile(slot, process.pid)
    return process.pid


def write_pidfile(slot: str, pid: int, warm: bool = False) -> None:
    path = pidfile_path(slot)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{pid}{' warm' if warm else ''}\n")
    os.replace(temporary, path)


def retire(slot: str, pid: int) -> None:
    """End the standby ``pid`` of ``slot`` (hung or suspended: SIGKILL to its group) and drop its pidfile."""
    processes.signal_group(pid, signal.SIGKILL)
    if read_pid(slot) == pid:
        try:
            pidfile_path(slot).unlink()
        except FileNotFoundError:
            pass


def release_pidfile(slot: str) -> None:
    """Remove the pidfile if it still names this process."""
    if read_pid(slot) == os.getpid():
        try:
            pidfile_path(slot).unlink()
        except FileNotFoundError:
            pass
