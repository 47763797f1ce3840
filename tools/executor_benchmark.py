"""Benchmark: throughput of the Ray executor against the local one (runs per minute for N tiny runs).

Each executor gets a throw-away workspace (SQLite store, run folders) and the same shared data cache,
warmed by one run first (not timed). Then N tiny runs (48 volumes of 12^3, a quarter-width tutorial net,
one epoch: really trained by ``execute_run``) are launched at once and timed from the first launch until
the last has ended. Both executors train ``--concurrent`` runs at a time: the local one on as many slots
(``CONV3D_LAB_SLOTS``, warm standby on), the Ray one with ``CONV3D_LAB_RAY_MAX_CONCURRENT`` on a local Ray
instance started here with ``--concurrent`` CPUs (its start-up is reported apart, not timed).
Prints one JSON line per executor and a summary line.

Usage: python tools/executor_benchmark.py [--runs 20] [--concurrent 2] [--executors local,ray]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = {
    "data": {"dataset": "shapes3d", "options": {"num_samples": 48}},
    "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
    "training": {"epochs": 1, "batch_size": 8},
}


def _wait_all_ended(store, run_ids: list[int], timeout_s: float) -> None:
    from engine.runs import ENDED_STATUSES

    deadline = time.monotonic() + timeout_s
    while True:
        runs = store.list_runs(ids=run_ids)
        if len(runs) == len(run_ids) and all(run.status in ENDED_STATUSES for run in runs):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {[(run.id, run.status.value) for run in runs]}")
        time.sleep(0.2)


def bench(executor: str, runs: int, concurrent: int, data: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"executor-benchmark-{executor}-"))
    os.environ.update({"CONV3D_LAB_HOME": str(home), "CONV3D_LAB_DATA": str(data), "CONV3D_LAB_EXECUTOR": executor,
                       "CONV3D_LAB_SLOTS": str(concurrent), "CONV3D_LAB_RAY_MAX_CONCURRENT": str(concurrent)})
    os.environ.pop("CONV3D_LAB_DB", None)
    from engine import jobs
    from engine.runs import RunStatus
    from engine.store import open_store

    figures: dict = {"executor": executor, "runs": runs, "concurrent": concurrent}
    if executor == "ray":
        import ray

        started = time.monotonic()
        ray.init(num_cpus=concurrent, include_dashboard=False, log_to_driver=False, configure_logging=False)
        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        figures["ray_start_s"] = round(time.monotonic() - started, 1)
    store = open_store()
    try:
        warm = jobs.launch(TINY, store=store)  # the data cache and, locally, the warm standby (not timed)
        _wait_all_ended(store, [warm], 600)
        started = time.monotonic()
        run_ids = [jobs.launch(TINY, store=store) for _ in range(runs)]
        _wait_all_ended(store, run_ids, 3600)
        elapsed = time.monotonic() - started
        ended = store.list_runs(ids=run_ids)
        figures.update({
            "seconds": round(elapsed, 1), "runs_per_minute": round(60 * runs / elapsed, 2),
            "finished": sum(run.status == RunStatus.FINISHED for run in ended),
        })
    finally:
        if executor == "ray":
            import ray

            time.sleep(6)  # the last actors end themselves
            ray.shutdown()
            os.environ.pop("RAY_ADDRESS", None)
        else:
            from engine.jobs import standby

            for slot in jobs.slots():
                pid = standby.live_standby(slot)
                if pid:
                    standby.retire(slot, pid)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--executors", default="local,ray")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="executor-benchmark-data-"))
    results = []
    for executor in args.executors.split(","):
        figures = bench(executor.strip(), args.runs, args.concurrent, data)
        print(json.dumps(figures), flush=True)
        results.append(figures)
    print("; ".join(f"{r['executor']}: {r['runs_per_minute']} runs/min ({r['finished']}/{r['runs']} finished in "
                    f"{r['seconds']} s)" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
