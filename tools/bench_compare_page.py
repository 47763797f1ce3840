"""Time the Compare page with Streamlit's AppTest on the store of $CONV3D_LAB_HOME (run by
``python -m engine bench compare``, which fills a temporary store first); prints JSON on its last line.

Each timed render is a fresh session (a new AppTest) opening the page by URL, after one warm-up
session, as a browser tab opening a link on a running server: modules are imported, caches empty.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from engine.store import open_store  # noqa: E402

PAGE = "app_pages/compare.py"
REPEATS = 3


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--selected", type=int, default=20)
    args = parser.parse_args()
    ids = [run.id for run in open_store().list_runs()][: args.selected]
    selection = {"runs": ",".join(map(str, ids))}
    _render(selection)  # warm-up: imports, the database's page cache
    compare = [_render(selection) for _ in range(REPEATS)]
    table = [_render({}) for _ in range(REPEATS)]
    print(json.dumps({
        "compare_seconds": round(statistics.median(compare), 3),
        "table_seconds": round(statistics.median(table), 3),
        "compare_seconds_all": [round(s, 3) for s in compare],
        "table_seconds_all": [round(s, 3) for s in table],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
