"""Operating-system plumbing of the jobs package: detached children, liveness, signals.

Workers and stop helpers are started in their own session
(``start_new_session=True``), so a worker is the leader of its own process
group: the dashboard or CLI that started it can exit, be restarted or crash
without touching it, and a stop can signal the whole group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

from engine import paths
from engine.errors import LabError
from engine.machine.devices import cuda_visible_devices

WORKER_LOG_NAME = "worker.log"
# The nice value background workers run at, at least (Unix: 0 normal, 19 the lowest priority), so the
# pages stay responsive on a machine whose cores the workers keep busy. Absolute, not an increment: a
# worker started by a worker (the queue's next run) gets the same value, not a lower one.
WORKER_NICE_ENV = "CONV3D_LAB_WORKER_NICE"
DEFAULT_WORKER_NICE = 10

# Popen objects of children this process started: polled now and then so that
# finished ones are reaped instead of lingering as zombies in a long-lived
# dashboard (a zombie still answers kill(pid, 0)).
_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()


def worker_log_path(run_id: int, create: bool = True) -> Path:
    """``runs/<id>/worker.log``; ``create=False`` for readers (the run folder is not made)."""
    return paths.run_dir(run_id, create=create) / WORKER_LOG_NAME


def child_environment(store_url: str, slot: str | None = None) -> dict[str, str]:
    """This process's environment with the lab's workspace and database pinned, and the slot's GPU."""
    env = dict(os.environ)
    env["CONV3D_LAB_HOME"] = str(paths.lab_home())
    env["CONV3D_LAB_DB"] = store_url
    env["PYTHONUNBUFFERED"] = "1"  # the worker log is read live (log_tail)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    devices = cuda_visible_devices(slot) if slot else None
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = devices
    return env


def worker_nice() -> int:
    """The nice value of background workers: ``$CONV3D_LAB_WORKER_NICE`` (0-19), default 10."""
    raw = os.environ.get(WORKER_NICE_ENV, "").strip()
    if not raw:
        return DEFAULT_WORKER_NICE
    if not raw.isdigit() or int(raw) > 19:
        raise LabError(f"{WORKER_NICE_ENV} is {raw!r}; set it to a whole number from 0 (normal priority) "
                       f"to 19 (the lowest), or unset it ({DEFAULT_WORKER_NICE}).")
    return int(raw)


def lower_priority() -> int:
    """Lower this background worker's CPU priority to nice ``worker_nice()`` (never raise it); returns
    its nice value.

    A bad setting is refused at launch (``launch_group``); one set later is reported in the worker
    log and the default used, so a run never fails for it."""
    try:
        target = worker_nice()
    except LabError as e:
        print(f"{e} Using {DEFAULT_WORKER_NICE}.", file=sys.stderr, flush=True)
        target = DEFAULT_WORKER_NICE
    current = os.nice(0)
    return os.nice(target - current) if target > current else current


def spawn_detached(command: list[str], env: dict[str, str], log_path: Path, header: str) -> subprocess.Popen:
    """Start ``command`` in a new session with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"--- {datetime.now():%Y-%m-%d %H:%M:%S} {header}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.REPO_ROOT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    with _children_lock:
        _children.append(process)
    return process


def spawn_worker(run_id: int, slot: str, store_url: str) -> subprocess.Popen:
    """``python -m engine worker RUN_ID``, detached, pinned to ``slot``, logging to runs/<id>/worker.log."""
    return spawn_detached(
        [sys.executable, "-m", "engine", "worker", str(int(run_id))],
        child_environment(store_url, slot),
        worker_log_path(run_id),
        f"worker for run {int(run_id)} on slot {slot}",
    )


def spawn_stop_helper(run_id: int, grace_s: float, store_url: str) -> subprocess.Popen:
    """``python -m engine.jobs.escalate RUN_ID GRACE_S``: ends a stop that the worker does not finish itself."""
    return spawn_detached(
        [sys.executable, "-m", "engine.jobs.escalate", str(int(run_id)), repr(float(grace_s))],
        child_environment(store_url),
        worker_log_path(run_id),
        f"stop helper for run {int(run_id)} (grace {grace_s:g} s)",
    )


def reap_children() -> None:
    """Collect the exit status of finished children (so none stays a zombie)."""
    with _children_lock:
        _children[:] = [process for process in _children if process.poll() is None]


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (so the state is ``[0]``, utime and
    stime ``[11]`` and ``[12]``, the nice value ``[16]``); OSError without such a process or /proc."""
    text = (Path("/proc") / str(int(pid)) / "stat").read_text()
    return text.rsplit(")", 1)[1].split()


def pid_alive(pid: int | None, *, expect: tuple[str, ...] = ()) -> bool:
    """Whether process ``pid`` exists on this host, is not a zombie, and (when ``expect`` is given)
    still runs a command line containing every string in ``expect`` (so a recycled pid is not mistaken
    for our worker)."""
    if not pid:
        return False
    reap_children()
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; it belongs to someone else
    proc = Path("/proc") / str(int(pid))
    try:
        if proc_stat(pid)[0] in ("Z", "X"):
            return False
        if expect:
            arguments = [part.decode(errors="replace") for part in (proc / "cmdline").read_bytes().split(b"\0")]
            if not all(item in arguments for item in expect):
                return False
    except (OSError, IndexError):
        pass  # no /proc (macOS): kill(pid, 0) is the best answer there
    return True


def is_suspended(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP, or traced): it lives but does nothing."""
    try:
        state = proc_stat(pid)[0]
    except (OSError, IndexError):
        return False
    return state in ("T", "t")


def signal_group(pid: int, signum: int) -> bool:
    """Send ``signum`` to the process group led by ``pid`` (or to ``pid`` alone); False when it is gone."""
    try:
        if os.getpgid(int(pid)) == int(pid):
            os.killpg(int(pid), signum)
        else:
            os.kill(int(pid), signum)
    except ProcessLookupError:
        return False
    return True
