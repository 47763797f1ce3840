"""Screenshots of every dashboard page, for looking at (cut-off text, layout) and for the docs.

    python tools/screenshots.py --out docs/img --width 1280
    python tools/screenshots.py --out /tmp/shots --width 1280 --width 1920 --home /tmp/shots-lab

It builds a scratch workspace (``--home``; kept and reused when it already holds
runs) with a few tiny runs trained for real on the CPU: two single runs that
differ in learning rate and dropout, a 3-fold cross-validation group and a
3-trial sweep (shapes3d, 12^3 volumes, tutorial3d at width 0.25, 2 epochs;
a few minutes on two cores). Then it starts the dashboard on that workspace
(``streamlit run`` on a free loopback port), opens each page in headless
Chromium at each width and saves ``<page>-<width>.png`` (the whole page) under
``--out``. The server and everything it started are ended before it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHROMIUM = "/usr/bin/chromium"
# Every tiny run: small enough to train in seconds on a CPU, real enough that every page has content.
TINY = ["--dataset", "shapes3d", "--option", "num_samples=36", "--option", "size=12", "--arch", "tutorial3d",
        "--width", "0.25", "--epochs", "2", "--batch-size", "8"]
# The tallest screenshot (px): longer pages are cut here.
MAX_HEIGHT = 6000
PAGES = ("home", "data", "train", "runs", "inspect", "compare", "sweeps")


def _engine(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    result = subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"`python -m engine {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
    return result.stdout


def build_workspace(env: dict[str, str]) -> dict[str, list[int]]:
    """Train the tiny runs (unless the workspace has runs already); returns the ids per kind."""
    from engine.store import open_store

    store = open_store()
    if not store.list_runs():
        print("training the tiny runs (a few minutes on two cores) ...", flush=True)
        _engine(env, "train", *TINY, "--lr", "0.001", "--name", "baseline")
        _engine(env, "train", *TINY, "--lr", "0.003", "--dropout", "0.3", "--name", "more dropout")
        _engine(env, "train", *TINY, "--folds", "3", "--name", "cv")
        spec = {"name": "lr and dropout", "method": "random", "trials": 3, "metric": "val_loss",
                "direction": "minimize",
                "base": {"data": {"dataset": "shapes3d", "options": {"num_samples": 36, "size": 12}},
                         "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
                         "training": {"epochs": 2, "batch_size": 8}},
                "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                          "model.dropout_rate": {"low": 0.0, "high": 0.5}}}
        spec_path = Path(env["CONV3D_LAB_HOME"]) / "sweep.json"
        spec_path.write_text(json.dumps(spec))
        _engine(env, "sweep", str(spec_path), "--wait")
    runs = sorted(store.list_runs(), key=lambda run: run.id)
    return {
        "single": [run.id for run in runs if not run.group],
        "cv": [run.id for run in runs if run.group and run.group.startswith("cv-")],
    }


def page_urls(url: str, ids: dict[str, list[int]]) -> dict[str, str]:
    single, cv = ids["single"], ids["cv"]
    compare_ids = ",".join(map(str, single + cv))
    return {
        "home": url,
        "data": f"{url}/data",
        "train": f"{url}/train",
        "runs": f"{url}/runs?runs={','.join(map(str, cv[:1] or single[:1]))}",
        "inspect": f"{url}/inspect?run={(single or cv)[0]}",
        "compare": f"{url}/compare?runs={compare_ids}&group=data.folds",
        "sweeps": f"{url}/sweeps",
    }


def shoot(url: str, ids: dict[str, list[int]], out: Path, widths: list[int], pages: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS, wait_for_app

    saved = []
    urls = page_urls(url, ids)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in widths:
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.set_default_timeout(60_000)
                for name in pages:
                    page.goto(urls[name])
                    page.wait_for_selector("h1", timeout=60_000)
                    wait_for_app(page)
                    page.wait_for_timeout(1500)  # Plotly draws after the script run ends
                    # Streamlit scrolls its main container, not the document: grow the window to its height.
                    height = page.evaluate(
                        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                        "[data-testid=stAppViewContainer], section.main')].map(e => e.scrollHeight), 1000)")
                    page.set_viewport_size({"width": width, "height": min(int(height) + 40, MAX_HEIGHT)})
                    page.wait_for_timeout(1000)
                    wait_for_app(page)
                    page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton]')",
                                           timeout=120_000)
                    page.wait_for_timeout(1500)
                    path = out / f"{name}-{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    page.set_viewport_size({"width": width, "height": 1000})
                    saved.append(path)
                    print(path, flush=True)
                page.close()
        finally:
            browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNGs (default docs/img)")
    parser.add_argument("--width", type=int, action="append", help="viewport width in px, repeatable (default 1280)")
    parser.add_argument("--home", help="the scratch workspace (default: a new temporary folder); reused when it has runs")
    parser.add_argument("--page", action="append", choices=PAGES, help="only these pages (default: all)")
    args = parser.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="conv3d-screens-")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CONV3D_LAB_HOME": str(home / "lab"), "CONV3D_LAB_DATA": str(home / "data"),
           "CONV3D_LAB_STANDBY": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("CONV3D_LAB_DB", None)
    os.environ.update({key: env[key] for key in ("CONV3D_LAB_HOME", "CONV3D_LAB_DATA", "CONV3D_LAB_STANDBY")})
    os.environ.pop("CONV3D_LAB_DB", None)
    from tests.e2e.conftest import start_dashboard, stop_dashboard

    ids = build_workspace(env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    process, url = start_dashboard(env, home / "streamlit.log")
    try:
        shoot(url, ids, out, args.width or [1280], args.page or list(PAGES))
    finally:
        stop_dashboard(process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
