"""``python tests/jobs/launch_at_once.py CONFIG.json N [--demo] [--owner NAME | --owner-each]
[--resume ID,ID,...] [--no-workers]``: N launches (or resumes) at the same moment from N processes.

The imports (the engine, and what validating a config pulls in) are paid
once, then the process forks N children that each call ``engine.jobs.launch``
(or, with ``--resume``, ``engine.jobs.resume`` of the i-th id, round robin)
with their own store connection as soon as a shared pipe closes, so all of
them race for the store together. Each child prints {"run_id": ..., "pid": ...}.
On a demo (``--demo``) as visitor NAME (``--owner``) or as one visitor per
child (``--owner-each``: "visitor-<i>"), a launch refused by a cap prints
{"refused": sentence} instead. ``--no-workers`` queues without starting a
worker (the caps count queued and running runs alike); ``--connect-first``
opens each child's store connection before the release, so the children race
for the count itself rather than being spread out by their connection set-up.
Exit status 1 when any launch raised anything else (its error is on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import engine.datasets  # noqa: E402,F401  (imported by validate(); loaded before the fork)
import engine.models  # noqa: E402,F401
from engine import jobs  # noqa: E402
from engine.hosting import demo  # noqa: E402
from engine.jobs import control  # noqa: E402
from engine.store import open_store  # noqa: E402


def _launch_when_released(config: dict, release_fd: int, index: int, options: argparse.Namespace) -> int:
    owner = f"visitor-{index}" if options.owner_each else options.owner
    demo_mode = True if options.demo else None
    if options.connect_first:  # connected, the schema checked: the launches race for the count alone
        open_store().list_runs(limit=1)
    os.read(release_fd, 1)  # returns (b"") only once every copy of the write end is closed
    try:
        if options.resume:
            run_id = jobs.resume(options.resume[index % len(options.resume)], owner=owner, demo_mode=demo_mode)
        else:
            run_id = jobs.launch(config, owner=owner, demo_mode=demo_mode)
    except demo.DemoLimitError as exc:
        os.write(sys.stdout.fileno(), (json.dumps({"refused": str(exc), "pid": os.getpid()}) + "\n").encode())
        return 0
    except BaseException as exc:  # reported, and the exit status says so
        import traceback

        print(f"launch failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    # One write per line, so the ten children's lines never interleave.
    os.write(sys.stdout.fileno(), (json.dumps({"run_id": run_id, "pid": os.getpid()}) + "\n").encode())
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("count", type=int)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--owner")
    parser.add_argument("--owner-each", action="store_true")
    parser.add_argument("--resume", type=lambda text: [int(i) for i in text.split(",")])
    parser.add_argument("--no-workers", action="store_true")
    parser.add_argument("--connect-first", action="store_true")
    options = parser.parse_args(argv)
    if options.no_workers:
        control.schedule = lambda store=None: []
    config = json.loads(Path(options.config).read_text())
    release_read, release_write = os.pipe()
    children = []
    for index in range(options.count):
        pid = os.fork()
        if pid == 0:
            os.close(release_write)
            os._exit(_launch_when_released(config, release_read, index, options))
        children.append(pid)
    os.close(release_write)  # go
    failures = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failures += os.waitstatus_to_exitcode(status) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
