"""A run's epoch history: its best and result epochs, metric names, and curves (smoothed, thinned for drawing).

The conventions (best epoch, result epoch, drawing only thins) are written in engine/compare/__init__.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np

from engine.errors import LabError
from engine.runs import RunRecord

History = list[dict[str, Any]]  # [{"epoch": 1, "loss": ..., "val_loss": ..., "_wall_time": t}, ...]
RESULT_AT = ("best", "last")
AXES = ("epoch", "time")
VALIDATION_PREFIX = "val_"
# Traces longer than this are thinned for drawing (the extremes are kept).
MAX_DRAWN_POINTS = 400


class CompareError(LabError):
    """A comparison asked for something the runs do not have (an unknown field or metric, too few runs)."""


# --------------------------------------------------------------- histories
def monitor_of(run: RunRecord) -> str:
    return run.monitor or run.config.training.monitor


def lower_is_better(metric: str) -> bool:
    """Loss-like metrics improve downwards (as Keras' checkpoint "auto" mode decides)."""
    return "loss" in metric


def best_epoch(history: History, monitor: str) -> tuple[int, float] | None:
    """(epoch, value) where ``monitor`` is best in ``history``; None when it was never recorded."""
    points = [(row["epoch"], row[monitor]) for row in history if _finite(row.get(monitor))]
    if not points:
        return None
    values = np.array([value for _, value in points], dtype=float)
    index = int(np.argmin(values) if lower_is_better(monitor) else np.argmax(values))
    return int(points[index][0]), float(values[index])


def result_epoch(history: History, monitor: str, at: str = "best") -> int | None:
    """The epoch a result metric is read at: the best epoch by ``monitor``, or the last recorded epoch."""
    if at not in RESULT_AT:
        raise CompareError(f"The result epoch is {at!r}; choose best or last.")
    if not history:
        return None
    if at == "last":
        return int(history[-1]["epoch"])
    best = best_epoch(history, monitor)
    return None if best is None else best[0]


def value_at(history: History, metric: str, epoch: int | None) -> float | None:
    if epoch is None:
        return None
    for row in history:
        if row["epoch"] == epoch:
            value = row.get(metric)
            return float(value) if _finite(value) else None
    return None


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_names(histories: Mapping[int, History]) -> list[str]:
    """Every full metric name recorded per epoch in any history ("loss", "val_loss", "current_lr", ...)."""
    names: dict[str, None] = {}
    for history in histories.values():
        for row in history:
            names.update(dict.fromkeys(name for name in row if name != "epoch" and not name.startswith("_")))
    return sorted(names, key=lambda name: (name.startswith(VALIDATION_PREFIX), name))


def default_result_metric(histories: Mapping[int, History], runs: Sequence[RunRecord] = ()) -> str | None:
    """val_accuracy when recorded, else the first run's monitored metric, else the first metric."""
    names = metric_names(histories)
    for candidate in ("val_accuracy", *(monitor_of(run) for run in runs[:1])):
        if candidate in names:
            return candidate
    return names[0] if names else None


def curve_metrics(histories: Mapping[int, History]) -> list[str]:
    """The base names the curves offer: "loss" stands for loss and val_loss (chosen with the toggles)."""
    bases: dict[str, None] = {}
    for name in metric_names(histories):
        bases[name[len(VALIDATION_PREFIX):] if name.startswith(VALIDATION_PREFIX) else name] = None
    preferred = [name for name in ("loss", "accuracy", "auc") if name in bases]
    return preferred + sorted(name for name in bases if name not in preferred)


def curve(history: History, metric: str, axis: str = "epoch", started_at: float | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, epochs) of one metric: x is the epoch, or seconds since the run started (``axis="time"``)."""
    if axis not in AXES:
        raise CompareError(f"The axis is {axis!r}; choose epoch or time.")
    rows = [row for row in history if _finite(row.get(metric))]
    epochs = np.array([row["epoch"] for row in rows], dtype=float)
    y = np.array([row[metric] for row in rows], dtype=float)
    if axis == "epoch":
        return epochs, y, epochs
    times = np.array([row.get("_wall_time", np.nan) for row in rows], dtype=float)
    origin = started_at if started_at else (np.nanmin(times) if len(times) else 0.0)
    return times - origin, y, epochs


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (weight 0 returns the values unchanged)."""
    if not 0.0 <= weight < 1.0:
        raise CompareError(f"The smoothing is {weight}; choose a number from 0 up to (not including) 1.")
    values = np.asarray(values, dtype=float)
    if weight == 0.0 or len(values) == 0:
        return values
    out = np.empty_like(values)
    last = 0.0
    for index, value in enumerate(values):
        last = last * weight + (1 - weight) * value
        out[index] = last / (1 - weight ** (index + 1))
    return out


def downsample(count: int, values: np.ndarray | None = None, max_points: int = MAX_DRAWN_POINTS) -> np.ndarray:
    """Indices of at most about ``max_points`` evenly spaced points (first, last, and the minimum and
    maximum of ``values`` always among them). For drawing only."""
    if count <= max_points:
        return np.arange(count)
    picks = np.linspace(0, count - 1, max_points).round().astype(int)
    if values is not None and len(values):
        picks = np.concatenate([picks, [int(np.nanargmin(values)), int(np.nanargmax(values))]])
    return np.unique(picks)


def mean_metric(history: History, metric: str) -> float | None:
    values = [row[metric] for row in history if _finite(row.get(metric))]
    return float(np.mean(values)) if values else None
