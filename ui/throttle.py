"""The password gate's throttle: a wait that grows with wrong passwords, per session and per client.

The first ``FREE_FAILURES`` wrong passwords cost nothing (a person mistyping);
after that each one makes the next try wait ``BASE_DELAY_S * 2 ** (failures -
FREE_FAILURES)`` seconds (2, 4, 8, ... capped at ``MAX_DELAY_S``). A try during
the wait is refused before the password is compared. A right password clears
the count of the session and of its client.

The counts live in this module's ``THROTTLE``: one dict in the dashboard's
process, behind a lock. Every browser session of a Streamlit server is a thread
of that one process, so a client that opens new sessions (or drops its cookie)
meets the same count; nothing has to survive a restart of the server (which
takes long enough to be no help to a guesser), and a table in the run store
would put a write on the database for every wrong guess. A lab served by
several processes behind one balancer keeps one count per process: each still
grows exponentially.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

FREE_FAILURES = 5
BASE_DELAY_S = 1.0
MAX_DELAY_S = 15 * 60.0
# A key whose last failure is older than this is forgotten; at most MAX_KEYS keys are kept (oldest dropped).
FORGET_AFTER_S = 24 * 3600.0
MAX_KEYS = 10_000


def delay_after(failures: int) -> float:
    """Seconds the next try waits after ``failures`` wrong passwords in a row."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** (failures - FREE_FAILURES))


@dataclass
class _Count:
    failures: int = 0
    last_failure: float = 0.0
    next_try: float = 0.0


class FailureThrottle:
    """Wrong-password counts by key ("session:...", "client:..."), shared by the threads of one process."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = {}

    def wait_s(self, keys: Iterable[str]) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            return max([0.0, *(self._counts[key].next_try - now for key in keys if key in self._counts)])

    def failed(self, keys: Iterable[str]) -> tuple[int, float]:
        """Count a wrong password against each key; returns (the largest count, the wait it sets)."""
        now = self.clock()
        worst = 0
        with self._lock:
            self._forget(now)
            for key in keys:
                count = self._counts.setdefault(key, _Count())
                count.failures += 1
                count.last_failure = now
                count.next_try = now + delay_after(count.failures)
                worst = max(worst, count.failures)
        return worst, delay_after(worst)

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._counts.pop(key, None)

    def failures(self, key: str) -> int:
        with self._lock:
            return self._counts[key].failures if key in self._counts else 0

    def _forget(self, now: float) -> None:
        for key in [key for key, count in self._counts.items() if now - count.last_failure > FORGET_AFTER_S]:
            del self._counts[key]
        while len(self._counts) >= MAX_KEYS:
            del self._counts[min(self._counts, key=lambda key: self._counts[key].last_failure)]


def wait_sentence(wait_s: float, now: float) -> str:
    """When the next try is allowed, as a sentence."""
    at = time.strftime("%H:%M:%S UTC", time.gmtime(now + wait_s))
    return (f"Too many wrong passwords from this browser or network: the next try is allowed in "
            f"{max(1, round(wait_s))} s (at {at}).")


THROTTLE = FailureThrottle()

__all__ = ["FREE_FAILURES", "THROTTLE", "FailureThrottle", "delay_after", "wait_sentence"]
