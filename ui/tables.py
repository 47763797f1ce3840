"""Tables and small summaries of runs: pure functions over the store's run records."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from engine import compare
from engine.runs import RunRecord, RunStatus

# Progress and result before the knobs: at 1280 px the right-hand columns are behind a scroll.
TABLE_COLUMNS = (
    "id", "name", "lineage", "status", "epoch", "best", "duration", "dataset", "architecture", "optimizer",
    "initial lr", "batch",
    "dropout",
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


def best_text(run: RunRecord) -> str:
    if run.best_value is None:
        return ""
    return f"{run.monitor or 'best'} {run.best_value:.4g} @ {run.best_epoch}"


def runs_frame(runs: Sequence[RunRecord], now: float | None = None) -> pd.DataFrame:
    """One row per run with the columns of the Runs table (newest first, as given)."""
    now = time.time() if now is None else now
    rows = []
    for run in runs:
        rows.append(
            {
                "id": run.id,
                "name": run.name,
                "status": run.status.badge,
                "dataset": run.dataset,
                "architecture": run.architecture,
                "optimizer": run.config.training.optimizer,
                "initial lr": run.config.training.learning_rate,
                "batch": run.config.training.batch_size,
                "dropout": compare.effective_cell(run.config, "model.dropout_rate"),  # "0.3 (preset)"
                "epoch": f"{run.epochs_done}/{run.epochs_total}",
                "best": best_text(run),
                "duration": format_duration(run.duration(now)),
                "lineage": run.lineage,  # "from #12", "pretraining" (docs/transfer.md)
            }
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def status_style(badge: str) -> str:
    """CSS for one status cell of the runs table (for ``Styler.map``)."""
    text, background = RunStatus.from_badge(badge).cell_colors
    return f"color: {text}; background-color: {background}; font-weight: 600"


def styled_runs_frame(runs: Sequence[RunRecord], now: float | None = None):
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


def format_shape(volume_shape: Sequence[int]) -> str:
    """"16³" for a cube, "64×128×128" otherwise; a channel count above one is appended ("16³ ×3")."""
    spatial = [int(n) for n in volume_shape[:3]]
    text = f"{spatial[0]}³" if len(set(spatial)) == 1 else "×".join(str(n) for n in spatial)
    channels = int(volume_shape[3]) if len(volume_shape) > 3 else 1
    return text if channels == 1 else f"{text} ×{channels}"
