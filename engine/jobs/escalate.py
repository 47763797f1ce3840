"""``python -m engine.jobs.escalate RUN_ID GRACE_S``: the detached helper behind ``stop(wait=False)``.

It waits GRACE_S seconds for the worker to end its run after the stop flag,
then sends SIGTERM, then SIGKILL, and records ``stopped``. Running it as its
own short-lived process lets a stop started from a CLI (which exits at once)
or a dashboard (which may restart) still finish.
"""

from __future__ import annotations

import sys

from engine.jobs.control import escalate_stop
from engine.store import open_store


def main(argv: list[str] | None = None) -> int:
    run_id_text, grace_text = (sys.argv[1:] if argv is None else argv)[:2]
    status = escalate_stop(open_store(), int(run_id_text), float(grace_text))
    print(f"stop helper: run {run_id_text} is {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
