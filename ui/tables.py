"""Tables and small summaries of runs: pure functions over the store's run dicts."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

# Badge text for each status: symbols every font has (a server's browser may lack emoji fonts);
# status_style() colours the cell.
STATUS_BADGES = {
    "queued": "◌ queued",
    "running": "● running",
    "finished": "✓ finished",
    "failed": "✗ failed",
    "stopped": "■ stopped",
    "interrupted": "! interrupted",
}
# Cell text and background per status in the runs table.
STATUS_CELL_COLORS = {
    "queued": ("#4b5563", "#f3f4f6"),
    "running": ("#1d4ed8", "#dbeafe"),
    "finished": ("#15803d", "#dcfce7"),
    "failed": ("#b91c1c", "#fee2e2"),
    "stopped": ("#b45309", "#fef3c7"),
    "interrupted": ("#b45309", "#fef3c7"),
}
STATUS_COLORS = {
    "queued": "gray",
    "running": "blue",
    "finished": "green",
    "failed": "red",
    "stopped": "orange",
    "interrupted": "orange",
}
TABLE_COLUMNS = (
    "id", "name", "status", "dataset", "architecture", "optimizer", "lr", "batch", "dropout", "epoch", "best", "duration",
)


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def run_duration(run: Mapping[str, Any], now: float | None = None) -> float | None:
    """Seconds from start to finish (or to now while the run is active)."""
    started = run.get("started_at")
    if not started:
        return None
    end = run.get("finished_at") or (now if now is not None else time.time())
    return max(0.0, end - started)


def best_text(run: Mapping[str, Any]) -> str:
    if run.get("best_value") is None:
        return ""
    return f"{run.get('monitor') or 'best'} {run['best_value']:.4g} @ {run.get('best_epoch')}"


def _knob(config: Mapping[str, Any], section: str, name: str) -> Any:
    return (config or {}).get(section, {}).get(name)


def runs_frame(runs: Sequence[Mapping[str, Any]], now: float | None = None) -> pd.DataFrame:
    """One row per run with the columns of the Runs table (newest first, as given)."""
    now = time.time() if now is None else now
    rows = []
    for run in runs:
        config = run.get("config") or {}
        dropout = _knob(config, "model", "dropout_rate")
        rows.append(
            {
                "id": int(run["id"]),
                "name": run.get("name") or "",
                "status": STATUS_BADGES.get(run["status"], run["status"]),
                "dataset": run.get("dataset") or "",
                "architecture": run.get("architecture") or "",
                "optimizer": _knob(config, "training", "optimizer") or "",
                "lr": _knob(config, "training", "learning_rate"),
                "batch": _knob(config, "training", "batch_size"),
                "dropout": "preset" if dropout is None else f"{dropout:g}",
                "epoch": f"{run.get('epochs_done') or 0}/{run.get('epochs_total') or 0}",
                "best": best_text(run),
                "duration": format_duration(run_duration(run, now)),
            }
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def status_style(badge: str) -> str:
    """CSS for one status cell of the runs table (for ``Styler.map``)."""
    status = badge.split(" ", 1)[-1]
    text, background = STATUS_CELL_COLORS.get(status, ("inherit", "transparent"))
    return f"color: {text}; background-color: {background}; font-weight: 600"


def styled_runs_frame(runs: Sequence[Mapping[str, Any]], now: float | None = None):
    """``runs_frame`` with coloured status badges (a pandas Styler that st.dataframe draws)."""
    return runs_frame(runs, now).style.map(status_style, subset=["status"])


def eta_seconds(epoch_wall_times: Sequence[float], started_at: float | None, epochs_done: int, epochs_total: int,
                now: float | None = None) -> float | None:
    """Remaining seconds, from the mean time per epoch so far; None before the first epoch ends.

    Uses the spacing of recorded epochs when there are two or more (start-up time
    excluded), else the time from start to the first epoch.
    """
    remaining = max(0, int(epochs_total) - int(epochs_done))
    if epochs_done <= 0:
        return None
    times = sorted(epoch_wall_times)
    if len(times) >= 2:
        per_epoch = (times[-1] - times[0]) / (len(times) - 1)
    elif started_at and times:
        per_epoch = times[0] - started_at
    else:
        return None
    return max(0.0, per_epoch * remaining)


def parse_run_ids(text: str | None) -> list[int]:
    """"3,1,x,3" -> [3, 1]: the run ids in a ``?runs=`` query value, junk and repeats dropped."""
    ids: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in ids:
            ids.append(int(part))
    return ids


def format_run_ids(ids: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


def format_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
