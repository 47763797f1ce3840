"""The tests of the ``worker`` tier, listed in one place (tests/conftest.py marks them).

A test belongs here when it starts worker processes or TensorFlow: a real training (in this process
or a worker), a ``python -m engine`` subprocess, or so many fake-worker processes that it takes tens of
seconds. The inner loop, ``python -m pytest -m "not e2e and not worker"``, leaves them out; plain
``python -m pytest`` (CI) runs them. A new test of that kind is listed here or carries
``@pytest.mark.worker`` itself. Entries are node-id prefixes: a file, or one test of a file.
"""

from __future__ import annotations

WORKER_TESTS: tuple[str, ...] = (
)


def is_worker_test(nodeid: str) -> bool:
    """Whether the test with pytest node id ``nodeid`` is in the worker tier."""
    return any(nodeid == entry or nodeid.startswith(entry + "::") or nodeid.startswith(entry + "[")
               for entry in WORKER_TESTS)
