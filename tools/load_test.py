"""Ten people watching two runs train: a load test of the real dashboard on loopback.

    python tools/load_test.py                      # 10 sessions, 2 runs (the issue-16 figures)
    python tools/load_test.py --sessions 3 --runs 1 --epochs 3 --json

Starts the real server (``streamlit run streamlit_app.py``) on a free loopback
port in a scratch workspace, queues ``--runs`` real training runs (shapes3d +
tutorial3d, with as many training slots, so they train at the same time),
then opens ``--sessions`` pages of the Runs page showing those runs in one
headless Chromium, each in its own browser context (its own cookies and
Streamlit session), and leaves them watching until every run has ended.

In every page a sampler (10 times a second, in the page) notes when each
run's curves first showed epoch N. The live-chart latency of an epoch is that
moment minus the epoch's ``wall_time`` in the store (when the trainer recorded
it); only epochs recorded once every page is open and drawn count, so page loads
and worker start-up are not in the figure. Errors counted: uncaught page errors,
console errors, HTTP responses of 400 or more, Streamlit exception boxes,
"Connection error" states, epochs a page never drew, runs that did not finish,
and tracebacks in the server log.

Bounded: at most 20 sessions and 4 runs, and ``--timeout`` seconds in all; the
scratch workspace and every process started in it are removed at the end. Prints
one line per figure (``--json``: one JSON object) and exits 1 when there were errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

MAX_SESSIONS = 20
MAX_RUNS = 4
# Seconds between the last page drawing and the start of the measurement.
SETTLE_S = 3
# Each page notes, 10 times a second, how many epochs each run's curves show (keyed by the
# traces' legendgroup, which is the run id) and when each count was first reached; and
# whether an exception box or a connection error was on the page.
SAMPLER_JS = """() => {
  if (window.__loadTest) return;
  const state = {seen: {}, exceptions: [], connection_errors: 0, samples: 0};
  window.__loadTest = state;
  setInterval(() => {
    state.samples += 1;
    const now = Date.now();
    const plot = document.querySelector('.st-key-runs_curves .js-plotly-plot');
    for (const trace of (plot && plot.data) || []) {
      const run = trace.legendgroup;
      const count = (trace.x || []).length;
      const seen = state.seen[run] = state.seen[run] || {};
      for (let epoch = 1; epoch <= count; epoch++) if (!(epoch in seen)) seen[epoch] = now;
    }
    for (const box of document.querySelectorAll('[data-testid="stException"]')) {
      const text = box.innerText.slice(0, 300);
      if (!state.exceptions.includes(text)) state.exceptions.push(text);
    }
    if (state.samples % 10 === 0 && document.body.innerText.includes('Connection error')) state.connection_errors += 1;
  }, 100);
}"""


def _base_path_probe(url: str) -> bool:
    """Whether ``url`` is Streamlit's first guess at the server's base path on a deep link: opened at
    /runs, the front end asks /runs/_stcore/health (a 404) before /_stcore/health. Not an error."""
    path = urlsplit(url).path
    return path.endswith(("/_stcore/health", "/_stcore/host-config")) and not path.startswith("/_stcore/")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


def _run_config(index: int, args: argparse.Namespace):
    from engine.config import DataConfig, RunConfig, TrainingConfig

    return RunConfig(
        name=f"load test {index + 1}",
        data=DataConfig(dataset="shapes3d", options={"num_samples": args.samples, "size": args.size}),
        training=TrainingConfig(epochs=args.epochs, batch_size=16, seed=index),
    )


class Session:
    """One person: a browser context (own cookies, own Streamlit session) on the Runs page."""

    def __init__(self, browser, url: str, number: int, run_id: int):
        self.number = number
        self.run_id = run_id
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(120_000)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("requestfailed", lambda request: self.errors.append(
            f"request failed: {request.url[:200]} ({request.failure})"))
        self.url = url

    def _console(self, message) -> None:
        if message.type == "error" and not _base_path_probe(message.location.get("url", "")):
            self.errors.append(f"console error: {message.text[:300]}")

    def _response(self, response) -> None:
        if response.status >= 400 and not _base_path_probe(response.url):
            self.errors.append(f"HTTP {response.status} for {response.url}")

    def start_opening(self) -> None:
        self.opened_at = time.time()
        self.page.goto(self.url, wait_until="commit")  # every page loads at once; `ready` waits for each

    def ready(self) -> float:
        """Wait until the Runs page has drawn; start the sampler; returns the seconds the page took."""
        self.page.get_by_role("heading", name="Runs", exact=True).wait_for()
        self.page.locator(f".st-key-runs_panel_{self.run_id}").wait_for()  # the live panel of a watched run
        self.page.evaluate(SAMPLER_JS)
        return time.time() - self.opened_at

    def report(self) -> dict:
        state = self.page.evaluate("() => window.__loadTest")
        self.errors += [f"exception box: {text}" for text in state["exceptions"]]
        if state["connection_errors"]:
            self.errors.append(f"'Connection error' shown in {state['connection_errors']} samples")
        return state


def _start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    from tests.e2e.conftest import _free_port, _wait_healthy

    port = _free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, process, 60)
    return process, url


def _stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_test(args: argparse.Namespace) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _end_workspace_processes

    home = Path(tempfile.mkdtemp(prefix="conv3d-load-"))
    overrides = {"CONV3D_LAB_HOME": str(home), "CONV3D_LAB_SLOTS": str(args.runs)}
    if args.fake_epoch_s:
        from engine.jobs import worker

        # The workers' test hook: made-up epochs every --fake-epoch-s seconds, no TensorFlow.
        overrides.update({worker.FAKE_WORKER_ENV: str(args.fake_epoch_s * args.epochs), worker.FAKE_CURVE_ENV: "1"})
    saved = {name: os.environ.get(name) for name in (*overrides, "CONV3D_LAB_DB")}
    os.environ.pop("CONV3D_LAB_DB", None)  # the scratch workspace's own database
    os.environ.update(overrides)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = home / "streamlit.log"
    errors: list[str] = []
    result: dict = {"sessions": args.sessions, "runs": args.runs, "epochs": args.epochs,
                    "training": f"made up, {args.fake_epoch_s:g} s per epoch" if args.fake_epoch_s else "real"}
    started = time.monotonic()
    deadline = started + args.timeout
    server = None
    try:
        server, url = _start_server(env, log_path)
        from engine import jobs
        from engine.store import open_store

        store = open_store()
        # force: skip the memory estimate (a TensorFlow start in a helper process); these runs are tiny.
        run_ids = [jobs.launch(_run_config(i, args), store=store, force=True) for i in range(args.runs)]
        page_url = f"{url}/runs?runs={','.join(map(str, run_ids))}"
        cpu_before = _cpu_seconds(server.pid)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                sessions = [Session(browser, page_url, n, run_ids[0]) for n in range(args.sessions)]
                for session in sessions:
                    session.start_opening()
                open_s = [session.ready() for session in sessions]
                result["page_open_s_median"] = _round(_percentile(open_s, 50))
                result["page_open_s_max"] = _round(max(open_s))
                # Latencies count from here: every page open and drawn (a page load is heavy work for a
                # browser, and ten of them on the same two cores would slow the pages already open).
                sessions[0].page.wait_for_timeout(SETTLE_S * 1000)
                steady_since = time.time()
                watch_started = time.monotonic()
                server_rss = [_rss_mb(server.pid)]
                while time.monotonic() < deadline:
                    sessions[0].page.wait_for_timeout(1000)  # lets Playwright deliver the pages' events
                    server_rss.append(_rss_mb(server.pid))
                    runs = store.list_runs(ids=run_ids)
                    if all(run.status.is_ended for run in runs):
                        break
                else:
                    errors.append(f"the runs had not ended after --timeout {args.timeout} s")
                sessions[0].page.wait_for_timeout(3000)  # a last refresh for the final epochs
                watched_s = time.monotonic() - watch_started
                result["server_cpu_share"] = round((_cpu_seconds(server.pid) - cpu_before) / watched_s, 2)
                result["server_rss_mb_max"] = round(max(server_rss))
                result["watched_s"] = round(watched_s, 1)
                states = [session.report() for session in sessions]
            finally:
                browser.close()

        runs = {run.id: run for run in store.list_runs(ids=run_ids)}
        for run in runs.values():
            if run.status.is_ended and run.error:
                errors.append(f"run {run.id} {run.status.label}: {run.error}")
            elif run.epochs_done < args.epochs:
                errors.append(f"run {run.id} {run.status.label} after {run.epochs_done} of {args.epochs} epochs")
        recorded: dict[int, dict[int, float]] = {run_id: {} for run_id in run_ids}
        for row in store.get_metrics(run_ids, kind="epoch"):
            recorded[row["run_id"]].setdefault(row["epoch"], row["wall_time"])
        latencies: list[float] = []
        for session, state in zip(sessions, states):
            for run_id, epochs in recorded.items():
                seen = state["seen"].get(str(run_id), {})
                for epoch, wall_time in sorted(epochs.items()):
                    if wall_time < steady_since:
                        continue
                    if str(epoch) not in seen:
                        session.errors.append(f"run {run_id} epoch {epoch} was never drawn")
                        continue
                    latencies.append(seen[str(epoch)] / 1000 - wall_time)
                    if args.verbose:
                        print(f"session {session.number} run {run_id} epoch {epoch}: recorded "
                              f"{wall_time - steady_since:.1f} s into the measurement, "
                              f"drawn {latencies[-1]:.2f} s later")
            errors += [f"session {session.number}: {error}" for error in session.errors]
        result.update(
            latency_samples=len(latencies),
            latency_p50_s=_round(_percentile(latencies, 50)),
            latency_p95_s=_round(_percentile(latencies, 95)),
            latency_max_s=_round(max(latencies) if latencies else None),
            epoch_s_median=_round(_percentile(_epoch_gaps(recorded), 50)),
            load_average_1min=round(os.getloadavg()[0], 1),
        )
        if not latencies:
            errors.append("no epoch was recorded while the pages watched")
    finally:
        if server is not None:
            _stop_server(server)
        left = _end_workspace_processes(home)
        if left:
            errors.append(f"processes of the workspace survived: {left}")
        if log_path.exists():
            log = log_path.read_text(errors="replace")
            errors += [f"server log: {line}" for line in log.splitlines() if "Traceback" in line]
        if args.keep_home:
            print(f"workspace kept: {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    result["errors"] = len(errors)
    result["error_messages"] = errors[:50]
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


def _epoch_gaps(recorded: dict[int, dict[int, float]]) -> list[float]:
    """Seconds between consecutive epochs of each run (how often a new point arrives)."""
    gaps = []
    for epochs in recorded.values():
        times = [epochs[e] for e in sorted(epochs)]
        gaps += [b - a for a, b in zip(times, times[1:])]
    return gaps


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _bounded(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=_bounded(1, MAX_SESSIONS), default=10, help="browser sessions watching")
    parser.add_argument("--runs", type=_bounded(1, MAX_RUNS), default=2, help="runs training at the same time")
    parser.add_argument("--epochs", type=_bounded(2, 200), default=30)
    parser.add_argument("--samples", type=_bounded(20, 2000), default=400, help="shapes3d samples per run")
    parser.add_argument("--size", type=_bounded(8, 32), default=16, help="volume edge in voxels")
    parser.add_argument("--fake-epoch-s", type=float, default=0.0,
                        help="workers record made-up epochs this many seconds apart instead of training "
                             "(the dashboard's own cost, without TensorFlow)")
    parser.add_argument("--timeout", type=_bounded(60, 3600), default=900, help="seconds for the whole test")
    parser.add_argument("--keep-home", action="store_true", help="keep the scratch workspace (its path is printed)")
    parser.add_argument("--verbose", action="store_true", help="one line per session, run and epoch")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = load_test(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "error_messages":
                print(f"{key}: {value}")
        for message in result["error_messages"]:
            print(f"  error: {message}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
