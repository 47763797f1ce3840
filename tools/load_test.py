"""Ten people watching two runs train: a load test of the real dashboard on loopback.

    python tools/load_test.py                      # 10 sessions (1 browser), 2 runs: the issue-16 figures
    python tools/load_test.py --sessions 3 --runs 1 --epochs 3 --json
    python tools/load_test.py --browsers 10        # every session a Chromium page

Starts the real server (``streamlit run streamlit_app.py``) on a free loopback
port in a scratch workspace, queues ``--runs`` real training runs (shapes3d +
tutorial3d, with as many training slots, so they train at the same time), then
opens ``--sessions`` sessions of the Runs page showing those runs and leaves them
watching until every run has ended. ``--browsers`` of them are headless Chromium
pages, each in its own browser context (its own cookies and Streamlit session);
the others are Streamlit protocol clients (``ProtocolSession``): the WebSocket
conversation a browser holds, without drawing, so ten viewers cost the server
what ten remote browsers would, not ten browsers' drawing on the server's cores.

Each session notes when a run's curves first held epoch N (a page samples its
chart 10 times a second; a protocol client reads the Plotly specification in the
delta as it arrives). The live-chart latency of an epoch is that moment minus the
epoch's ``wall_time`` in the store (when the trainer recorded it); only epochs
recorded once every session is open count, so page loads and worker start-up
are not in the figure. Errors counted: uncaught page errors, console errors,
HTTP responses of 400 or more, Streamlit exception boxes, "Connection error"
states, epochs a session never showed, runs that did not finish, and tracebacks
in the server log.

Bounded: at most 20 sessions and 4 runs, and ``--timeout`` seconds in all; the
scratch workspace and every process started in it are removed at the end. Prints
one line per figure (``--json``: one JSON object) and exits 1 when there were errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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
# traces' first run id, ui/figures.curves_figure's meta) and when each count was first reached; and
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
      const run = trace.meta && trace.meta.run_ids ? String(trace.meta.run_ids[0]) : trace.legendgroup;
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


class BrowserSession:
    """One person in headless Chromium: a browser context (own cookies, own Streamlit session) on the Runs page."""

    kind = "browser"

    def __init__(self, url: str, number: int, run_ids: list[int]):
        self.number = number
        self.run_id = run_ids[0]
        self.url = f"{url}/runs?runs={','.join(map(str, run_ids))}"
        self.errors: list[str] = []
        self.page = None

    async def start(self, browser) -> None:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await context.new_page()
        self.page.set_default_timeout(120_000)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("requestfailed", lambda request: self.errors.append(
            f"request failed: {request.url[:200]} ({request.failure})"))

    def _console(self, message) -> None:
        if message.type == "error" and not _base_path_probe(message.location.get("url", "")):
            self.errors.append(f"console error: {message.text[:300]}")

    def _response(self, response) -> None:
        if response.status >= 400 and not _base_path_probe(response.url):
            self.errors.append(f"HTTP {response.status} for {response.url}")

    async def open(self) -> float:
        """Open the Runs page and wait until it has drawn; start the sampler; returns the seconds it took."""
        opened_at = time.time()
        await self.page.goto(self.url, wait_until="commit")
        await self.page.get_by_role("heading", name="Runs", exact=True).wait_for()
        await self.page.locator(f".st-key-runs_panel_{self.run_id}").wait_for()  # the live panel of a watched run
        await self.page.evaluate(SAMPLER_JS)
        return time.time() - opened_at

    async def report(self) -> dict:
        state = await self.page.evaluate("() => window.__loadTest")
        self.errors += [f"exception box: {text}" for text in state["exceptions"]]
        if state["connection_errors"]:
            self.errors.append(f"'Connection error' shown in {state['connection_errors']} samples")
        return state


class ProtocolSession:
    """One viewer as a Streamlit protocol client: the browser's WebSocket conversation, without a browser.

    It asks for the Runs page as the front end does (a ``rerun_script`` BackMsg with the page and the
    query string), keeps the fragment timers the server asks for as the front end does (``auto_rerun``:
    a fragment rerun every ``interval`` seconds; all cleared when a full run starts, one by
    ``stop_auto_rerun``), and notes when a live chart first holds epoch N of each run, from the
    Plotly specification in the delta. No drawing: a browser adds its own rendering time (the
    default run has one Chromium page to measure it).
    """

    kind = "protocol"

    def __init__(self, url: str, number: int, run_ids: list[int]):
        self.number = number
        self.errors: list[str] = []
        self.ws_url = url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.query = "runs=" + ",".join(map(str, run_ids))
        self.run_id = run_ids[0]
        self.state: dict = {"seen": {}, "exceptions": [], "connection_errors": 0, "samples": 0}
        self.opened_at = 0.0
        self.drawn = asyncio.Event()  # set when the page's first full run has finished
        self.page_script_hash = ""  # the Runs page's, from the first run's navigation message

    def _rerun(self, fragment_id: str = "") -> bytes:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        client = message.rerun_script
        client.query_string = self.query
        client.page_name = "runs"
        client.page_script_hash = self.page_script_hash  # as the front end does; a rerun without it runs Home
        client.fragment_id = fragment_id
        client.is_auto_rerun = bool(fragment_id)
        return message.SerializeToString()

    async def watch(self, stop) -> None:
        import websockets
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        timers: dict[str, asyncio.Task] = {}
        intervals: dict[str, float] = {}

        async def every(ws, interval: float, fragment_id: str) -> None:
            try:
                while True:
                    await asyncio.sleep(interval)
                    await ws.send(self._rerun(fragment_id))
            except websockets.ConnectionClosed:
                pass  # the watch loop reports the closed connection

        def cancel(fragment_id: str | None = None) -> None:
            for key in [fragment_id] if fragment_id else list(timers):
                task = timers.pop(key, None)
                if task:
                    task.cancel()

        try:
            async with websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None) as ws:
                await ws.send(self._rerun())
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(ws.recv(), timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    now = time.time()
                    message = ForwardMsg()
                    message.ParseFromString(data)
                    kind = message.WhichOneof("type")
                    if kind == "navigation":
                        self.page_script_hash = message.navigation.page_script_hash  # the page shown
                    elif kind == "new_session" and not message.metadata.run.fragment_ids:
                        cancel()  # a full run (a fragment's run names its fragments) sets the timers anew
                    elif kind == "auto_rerun":
                        fragment_id, interval = message.auto_rerun.fragment_id, message.auto_rerun.interval
                        if intervals.get(fragment_id) != interval or fragment_id not in timers:
                            cancel(fragment_id)
                            intervals[fragment_id] = interval
                            timers[fragment_id] = asyncio.create_task(every(ws, interval, fragment_id))
                    elif kind == "stop_auto_rerun":
                        for fragment_id in message.stop_auto_rerun.fragment_ids:
                            cancel(fragment_id)
                    elif kind == "script_finished":
                        self.state["samples"] += 1
                        if message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                            self.drawn.set()
                        elif message.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                            self.errors.append("the page failed to compile")
                    elif kind == "session_event" and message.session_event.HasField("script_compilation_exception"):
                        self.errors.append("script compilation exception")
                    elif kind == "page_not_found":
                        self.errors.append("page not found")
                    elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                        self._element(message.delta.new_element, now)
        except (OSError, websockets.WebSocketException) as e:
            self.errors.append(f"connection: {e}")
            self.state["connection_errors"] += 1
        finally:
            cancel()
            self.drawn.set()  # `open` must not wait for a page that will never come

    def _element(self, element, now: float) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            text = f"{element.exception.type}: {element.exception.message}"[:300]
            if text not in self.state["exceptions"]:
                self.state["exceptions"].append(text)
        elif kind == "plotly_chart":
            for trace in json.loads(element.plotly_chart.spec).get("data", []):
                run_ids = (trace.get("meta") or {}).get("run_ids") or [trace.get("legendgroup")]
                seen = self.state["seen"].setdefault(str(run_ids[0]), {})
                for epoch in range(1, len(trace.get("x") or []) + 1):
                    seen.setdefault(str(epoch), now * 1000)  # milliseconds, as the browser sampler notes

    async def open(self, stop) -> float:
        """Connect and ask for the Runs page (the watch goes on in a task until ``stop``); returns the
        seconds until its first run had finished."""
        self.opened_at = time.time()
        self.task = asyncio.create_task(self.watch(stop))
        await self.drawn.wait()
        return time.time() - self.opened_at

    async def report(self) -> dict:
        await self.task
        self.errors += [f"exception box: {text}" for text in self.state["exceptions"]]
        return self.state


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    from engine.jobs.processes import proc_stat

    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch:
    """The measurement window shared by both kinds of client: server CPU and memory, until the runs end."""

    def __init__(self, server, store, run_ids: list[int], deadline: float, errors: list[str]):
        self.server, self.store, self.run_ids, self.deadline, self.errors = server, store, run_ids, deadline, errors
        self.cpu_before = _cpu_seconds(server.pid)
        self.rss = [_rss_mb(server.pid)]
        self.started = time.monotonic()

    def tick(self) -> bool:
        """One sample (call about once a second); False once the runs have ended or time is up."""
        self.rss.append(_rss_mb(self.server.pid))
        if all(run.status.is_ended for run in self.store.list_runs(ids=self.run_ids)):
            return False
        if time.monotonic() > self.deadline:
            self.errors.append("the runs had not ended before --timeout")
            return False
        return True

    def figures(self) -> dict:
        watched_s = time.monotonic() - self.started
        return {"server_cpu_share": round((_cpu_seconds(self.server.pid) - self.cpu_before) / watched_s, 2),
                "server_rss_mb_max": round(max(self.rss)), "watched_s": round(watched_s, 1)}


async def _watch(args, url: str, run_ids: list[int], make_watch, result: dict):
    """Open every session at once, wait until each has drawn, then measure until the runs end; returns
    (sessions, their states, when the measurement began)."""
    stop = asyncio.Event()
    sessions = [BrowserSession(url, n, run_ids) if n < args.browsers else ProtocolSession(url, n, run_ids)
                for n in range(args.sessions)]
    playwright = browser = None
    try:
        if args.browsers:
            from playwright.async_api import async_playwright

            from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

            playwright = await async_playwright().start()
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for session in sessions[:args.browsers]:
                await session.start(browser)
        opens = [session.open() if session.kind == "browser" else session.open(stop) for session in sessions]
        _open_figures(result, await asyncio.wait_for(asyncio.gather(*opens), 180))
        # Latencies count from here: every page open and drawn (a page load is heavy work for a
        # browser, and several on the same two cores would slow the pages already open).
        await asyncio.sleep(SETTLE_S)
        steady_since = time.time()
        watch = make_watch()
        while watch.tick():
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # a last refresh for the final epochs
        result.update(watch.figures())
        stop.set()
        states = [await session.report() for session in sessions]
        return sessions, states, steady_since
    finally:
        stop.set()
        if browser is not None:
            await browser.close()
        if playwright is not None:
            await playwright.stop()


def _open_figures(result: dict, open_s: list[float]) -> None:
    result["page_open_s_median"] = _round(_percentile(open_s, 50))
    result["page_open_s_max"] = _round(max(open_s))


def load_test(args: argparse.Namespace) -> dict:
    from tests.e2e.conftest import _end_workspace_processes, start_dashboard, stop_dashboard

    home = Path(tempfile.mkdtemp(prefix="conv3d-load-"))
    overrides = {"CONV3D_LAB_HOME": str(home), "CONV3D_LAB_SLOTS": str(args.runs)}
    if args.fake_epoch_s:
        from engine.jobs import worker
        from tests import fake_worker

        # The workers' testing module: made-up epochs every --fake-epoch-s seconds, no TensorFlow.
        overrides.update({worker.TEST_WORKER_ENV: fake_worker.__name__,
                          fake_worker.FAKE_WORKER_ENV: str(args.fake_epoch_s * args.epochs), fake_worker.FAKE_CURVE_ENV: "1"})
    saved = {name: os.environ.get(name) for name in (*overrides, "CONV3D_LAB_DB")}
    os.environ.pop("CONV3D_LAB_DB", None)  # the scratch workspace's own database
    os.environ.update(overrides)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = home / "streamlit.log"
    errors: list[str] = []
    result: dict = {"sessions": args.sessions, "browsers": min(args.browsers, args.sessions), "runs": args.runs, "epochs": args.epochs,
                    "training": f"made up, {args.fake_epoch_s:g} s per epoch" if args.fake_epoch_s else "real"}
    started = time.monotonic()
    server = None
    try:
        server, url = start_dashboard(env, log_path)
        from engine import jobs
        from engine.store import open_store

        store = open_store()
        # force: skip the memory estimate (a TensorFlow start in a helper process); these runs are tiny.
        run_ids = [jobs.launch(_run_config(i, args), store=store, force=True) for i in range(args.runs)]

        def make_watch():
            return Watch(server, store, run_ids, started + args.timeout, errors)

        try:
            sessions, states, steady_since = asyncio.run(_watch(args, url, run_ids, make_watch, result))
        except Exception as e:  # a page that never drew (a Playwright timeout), a server gone, ...
            errors.append(f"the sessions could not watch the runs: {e!r}"[:500])
            sessions, states, steady_since = [], [], time.time()

        runs = {run.id: run for run in store.list_runs(ids=run_ids)}
        for run in runs.values():
            if run.status.is_ended and run.error:
                errors.append(f"run {run.id} {run.status.label}: {run.error}")
            elif run.epochs_done < args.epochs:
                errors.append(f"run {run.id} {run.status.label} after {run.epochs_done} of {args.epochs} epochs")
        recorded: dict[int, dict[int, float]] = {run_id: {} for run_id in run_ids}
        for row in store.get_metrics(run_ids, kind="epoch"):
            recorded[row["run_id"]].setdefault(row["epoch"], row["wall_time"])
        latencies: dict[str, list[float]] = {"all": [], "browser": [], "protocol": []}
        for session, state in zip(sessions, states):
            for run_id, epochs in recorded.items():
                seen = state["seen"].get(str(run_id), {})
                for epoch, wall_time in sorted(epochs.items()):
                    if wall_time < steady_since:
                        continue
                    if str(epoch) not in seen:
                        session.errors.append(f"run {run_id} epoch {epoch} was never drawn")
                        continue
                    latency = seen[str(epoch)] / 1000 - wall_time
                    latencies["all"].append(latency)
                    latencies[session.kind].append(latency)
                    if args.verbose:
                        print(f"{session.kind} session {session.number} run {run_id} epoch {epoch}: recorded "
                              f"{wall_time - steady_since:.1f} s into the measurement, on the chart {latency:.2f} s later")
            errors += [f"{session.kind} session {session.number}: {error}" for error in session.errors]
        for name, values in latencies.items():
            prefix = "latency" if name == "all" else f"{name}_latency"
            if name == "all" or values:
                result.update({f"{prefix}_samples": len(values), f"{prefix}_p50_s": _round(_percentile(values, 50)),
                               f"{prefix}_p95_s": _round(_percentile(values, 95)),
                               f"{prefix}_max_s": _round(max(values) if values else None)})
        result.update(epoch_s_median=_round(_percentile(_epoch_gaps(recorded), 50)),
                      load_average_1min=round(os.getloadavg()[0], 1))
        if sessions and not latencies["all"]:
            errors.append("no epoch was recorded while the sessions watched")
    finally:
        if server is not None:
            stop_dashboard(server)
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
    parser.add_argument("--browsers", type=_bounded(0, MAX_SESSIONS), default=1,
                        help="how many of the sessions are headless Chromium pages (which draw the page, on "
                             "the same cores as the server); the others are Streamlit protocol clients")
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
