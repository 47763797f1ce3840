"""A run's heartbeat: every few seconds the process holding it touches a file in the run folder and
writes ``runs.heartbeat_at`` to the store.

The two are separate threads on purpose. A store write may wait up to a minute for another
process's SQLite write lock (or a slow Postgres server); during that wait the worker is healthy,
and the file, touched by its own thread, still says so. Liveness (engine/jobs/control.py
``heartbeat_age``) takes the newer of the two, so a run is called silent only when the process
itself is stopped or hung.
"""

from __future__ import annotations

import logging
import os
import threading

from engine import paths

log = logging.getLogger(__name__)

# Seconds between heartbeats (issue 3 asks for at least one every 10 s, also during long epochs).
HEARTBEAT_INTERVAL_S = 5.0
# The file in the run folder whose modification time is the process's last sign of life.
HEARTBEAT_FILE = "heartbeat"


def heartbeat_path(run_id: int, *, create: bool = False):
    return paths.run_dir(run_id, create=create) / HEARTBEAT_FILE


def file_beat_time(run_id: int) -> float | None:
    """When the run's process last touched its heartbeat file (None when there is none)."""
    try:
        return heartbeat_path(run_id).stat().st_mtime
    except OSError:
        return None


class Heartbeat:
    """``with Heartbeat(store, run_id): ...`` keeps the run's heartbeat file and ``runs.heartbeat_at`` fresh
    while the block runs and this process holds the run (its pid recorded with it)."""

    def __init__(self, store, run_id: int, interval_s: float = HEARTBEAT_INTERVAL_S):
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._beat, args=(store, run_id, interval_s), daemon=True),
            threading.Thread(target=self._touch, args=(run_id, interval_s), daemon=True),
        ]

    def _beat(self, store, run_id: int, interval_s: float) -> None:
        pid = os.getpid()
        while not self._done.wait(interval_s):
            try:
                if not store.heartbeat(run_id, pid):
                    log.warning("run %s is no longer held by pid %s; the heartbeat stops", run_id, pid)
                    self._done.set()
                    return
            except Exception:  # a busy database must not end the run; the next beat retries
                log.warning("heartbeat write failed", exc_info=True)

    def _touch(self, run_id: int, interval_s: float) -> None:
        while True:
            try:
                heartbeat_path(run_id).touch()  # never re-creates a deleted run folder
            except Exception:  # a run folder that is gone: the store's heartbeat still speaks
                pass
            if self._done.wait(interval_s):
                return

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=2)
