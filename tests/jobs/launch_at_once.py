"""``python tests/jobs/launch_at_once.py CONFIG.json N``: N launches at the same moment from N processes.

The imports (the engine, and what validating a config pulls in) are paid
once, then the process forks N children that each call ``engine.jobs.launch``
with their own store connection as soon as a shared pipe closes, so all of
them race for the store together. Each child prints {"run_id": ..., "pid": ...}.
Exit status 1 when any launch raised (its error is on stderr).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import engine.datasets  # noqa: E402,F401  (imported by validate(); loaded before the fork)
import engine.models  # noqa: E402,F401
from engine import jobs  # noqa: E402


def _launch_when_released(config: dict, release_fd: int) -> int:
    os.read(release_fd, 1)  # returns (b"") only once every copy of the write end is closed
    try:
        run_id = jobs.launch(config)
    except BaseException as exc:  # reported, and the exit status says so
        import traceback

        print(f"launch failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    # One write per line, so the ten children's lines never interleave.
    os.write(sys.stdout.fileno(), (json.dumps({"run_id": run_id, "pid": os.getpid()}) + "\n").encode())
    return 0


def main(config_path: str, count: int) -> int:
    config = json.loads(Path(config_path).read_text())
    release_read, release_write = os.pipe()
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(release_write)
            os._exit(_launch_when_released(config, release_read))
        children.append(pid)
    os.close(release_write)  # go
    failures = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failures += os.waitstatus_to_exitcode(status) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
