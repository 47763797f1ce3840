"""The Compare page benchmark: ``python tools/bench_compare_page.py --runs 200 --epochs 100 [--json]``.

Fills a temporary workspace with made-up runs (tests/fake_runs.py: metrics, predictions, results, no
training), then times the page with Streamlit's AppTest in this process; the lab's own store is left
alone. With --json it prints one JSON object with stable keys on its last line. (It was ``python -m
engine bench compare``; the engine never imports Streamlit, so the dashboard's benchmark lives here.)

Each timed render is a fresh session (a new AppTest) opening the page by URL, after one warm-up
session, as a browser tab opening a link on a running server: modules are imported, caches empty.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from engine.store import open_store  # noqa: E402

PAGE = "app_pages/compare.py"
REPEATS = 3
SELECTED_RUNS = 20  # runs selected on the Compare page


def _render(query: dict[str, str]) -> float:
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update(query)
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the Compare page raised: {at.exception[0].value}")
    return seconds


def time_page(selected: int) -> dict[str, object]:
    """Median seconds of a fresh session opening the Compare page with ``selected`` runs, and of the table."""
    ids = [run.id for run in open_store().list_runs()][:selected]
    selection = {"runs": ",".join(map(str, ids))}
    _render(selection)  # warm-up: imports, the database's page cache
    compare = [_render(selection) for _ in range(REPEATS)]
    table = [_render({}) for _ in range(REPEATS)]
    return {
        "compare_seconds": round(statistics.median(compare), 3),
        "table_seconds": round(statistics.median(table), 3),
        "compare_seconds_all": [round(s, 3) for s in compare],
        "table_seconds_all": [round(s, 3) for s in table],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="synthetic runs in the store (20 or more)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs per synthetic run")
    parser.add_argument("--json", action="store_true", help="one JSON object with stable keys")
    args = parser.parse_args(argv)
    if args.runs < SELECTED_RUNS or args.epochs < 1:
        print(f"error: the benchmark selects {SELECTED_RUNS} runs; give --runs {SELECTED_RUNS} or more and --epochs "
              "1 or more.", file=sys.stderr)
        return 2
    from tests.fake_runs import fill_store

    with tempfile.TemporaryDirectory(prefix="conv3d-bench-") as home:
        os.environ.update({"CONV3D_LAB_HOME": home, "CONV3D_LAB_STANDBY": "0"})
        os.environ.pop("CONV3D_LAB_DB", None)  # the scratch workspace's own database
        started = time.perf_counter()
        fill_store(open_store(f"sqlite:///{Path(home) / 'lab.db'}"), args.runs, args.epochs)
        fill_seconds = time.perf_counter() - started
        figures = {"runs": args.runs, "epochs": args.epochs, "selected": SELECTED_RUNS, **time_page(SELECTED_RUNS),
                   "fill_seconds": round(fill_seconds, 2)}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.runs} runs of {args.epochs} epochs: Compare page with {SELECTED_RUNS} selected runs "
              f"{figures['compare_seconds']:.2f} s, table of all runs {figures['table_seconds']:.2f} s "
              f"(store filled in {figures['fill_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
