"""``python tests/store/open_at_once.py URL N [--optuna]``: N processes open the store at ``URL`` at once.

The imports are paid once, then the process forks N children that each open the store (first-time
creation of the tables, or the migration of an older database) as soon as a shared pipe closes, then
record one run; with ``--optuna`` each also opens Optuna's study storage on the same database (its own
tables) and creates or loads one shared study. Each child prints {"pid", "run_id"}; a child that raised
prints its error on stderr, and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import optuna  # noqa: E402,F401  (imported before the fork, like the store)
import sqlalchemy  # noqa: E402,F401

from engine.config import RunConfig  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.sweeps import study  # noqa: E402
from engine.sweeps.spec import SweepSpec  # noqa: E402

STUDY_SWEEP_ID = 1


def _open_when_released(url: str, release_fd: int, with_optuna: bool) -> int:
    os.read(release_fd, 1)  # returns (b"") only once every copy of the write end is closed
    try:
        store = open_store(url)
        run_id = store.create_run(RunConfig(name=f"opened by {os.getpid()}"))
        if with_optuna:
            spec = SweepSpec.from_dict({"base": {"data": {"dataset": "shapes3d"}}, "method": "optuna", "trials": 2,
                                        "metric": "val_accuracy", "direction": "maximize",
                                        "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}})
            study.create(url, STUDY_SWEEP_ID, spec)
            study.load(url, STUDY_SWEEP_ID, spec)
    except BaseException as exc:  # reported, and the exit status says so
        import traceback

        print(f"open failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    os.write(sys.stdout.fileno(), (json.dumps({"pid": os.getpid(), "run_id": run_id}) + "\n").encode())
    return 0


def main(argv: list[str]) -> int:
    url, count, with_optuna = argv[0], int(argv[1]), "--optuna" in argv[2:]
    release_read, release_write = os.pipe()
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(release_write)
            os._exit(_open_when_released(url, release_read, with_optuna))
        children.append(pid)
    os.close(release_write)  # go
    failures = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failures += os.waitstatus_to_exitcode(status) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
