"""A group's runs as numbers: per-fold values at each fold's best epoch, and mean ± std over the folds.

One function per question, all reading the store only, so the CLI (``python -m
engine group ID``), the Sweeps page and the Compare page's grouping show the
same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine import statistics
from engine.errors import LabError
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, SAMPLES_PER_S_METRIC, RunRecord, RunStatus, fold_label
from engine.store import RunStore

# Per-epoch rows that describe the machine, not the model: left out of summaries.
_NOT_MODEL_METRICS = (CURRENT_LR_METRIC, EPOCH_TIME_METRIC, SAMPLES_PER_S_METRIC)


def best_epoch_row(history: Sequence[dict[str, Any]], run: RunRecord) -> dict[str, Any] | None:
    """The epoch row at the run's best epoch (by its monitor); its last epoch when none is recorded."""
    if not history:
        return None
    if run.best_epoch is not None:
        for row in history:
            if row["epoch"] == run.best_epoch:
                return row
    return history[-1]


# Shown for each fold at its last epoch too: a training accuracy near 1.0 at the last epoch beside a lower one at
# the best epoch is memorisation that the best epoch alone hides.
LAST_EPOCH_METRICS = ("accuracy", "val_accuracy", "loss", "val_loss")
LAST_SUFFIX = " @ last epoch"


def best_value(history: Sequence[dict[str, Any]], metric: str, direction: str) -> float | None:
    """The best value of ``metric`` over the run's epochs (max or min by ``direction``); None when absent."""
    values = [row[metric] for row in history if row.get(metric) is not None]
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def repetition_sets(runs: Sequence[RunRecord]) -> dict[int | None, list[RunRecord]]:
    """Runs of one group keyed by sweep trial (None outside sweeps): each set is one configuration's
    folds / seeds, ordered by fold then seed."""
    sets: dict[int | None, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.config.data.fold or 0, r.config.training.seed, r.id)):
        sets.setdefault(run.trial, []).append(run)
    return sets


def configuration_summary(store: RunStore, runs: Sequence[RunRecord]) -> dict[str, Any]:
    """One configuration's runs: each fold's metrics at its best epoch and at its last epoch ("last_metrics":
    training and validation accuracy and loss), mean ± std of every metric (and of the training accuracy at the
    last epoch, "accuracy @ last epoch"), curves.

    ``fold`` is the config's 0-based fold index; ``fold_label`` the 1-based "1/3" that is shown.
    """
    folds, values_by_metric = [], {}
    for run in runs:
        history = store.epoch_history(run.id)
        row = best_epoch_row(history, run) or {}
        metrics = {name: value for name, value in row.items() if name != "epoch" and name not in _NOT_MODEL_METRICS}
        for name, value in run.test_metrics.items():
            if name != "epoch":
                metrics[f"test_{name}"] = value
        last = history[-1] if history else {}
        last_metrics = {name: last[name] for name in LAST_EPOCH_METRICS if last.get(name) is not None}
        folds.append({
            "run_id": run.id, "fold": run.config.data.fold, "fold_label": fold_label(run.config),
            "seed": run.config.training.seed,
            "status": run.status.value, "epochs_done": run.epochs_done, "best_epoch": row.get("epoch"),
            "metrics": metrics, "last_epoch": last.get("epoch"), "last_metrics": last_metrics, "curve": history,
        })
        for name, value in metrics.items():
            values_by_metric.setdefault(name, []).append(value)
        if "accuracy" in last_metrics:  # the training accuracy at the last epoch, beside the best epoch's
            values_by_metric.setdefault("accuracy" + LAST_SUFFIX, []).append(last_metrics["accuracy"])
    summary = {name: estimate.to_dict() for name, estimate in estimates(values_by_metric).items()}
    return {"run_ids": [run.id for run in runs], "folds": folds, "summary": summary}


def estimates(values_by_metric: dict[str, list[float | None]]) -> dict[str, statistics.Estimate]:
    """Mean ± sample std and interval (within the metric's range) of every metric, by name."""
    return {
        name: estimate
        for name, values in sorted(values_by_metric.items())
        if (estimate := statistics.metric_estimate(name, values)) is not None
    }


# The metrics the Runs page summarises per group (those recorded), after the runs' monitored metric.
RUNS_PAGE_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_auc", "accuracy", "accuracy" + LAST_SUFFIX)


def group_rows(store: RunStore, runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (group, metric) for the groups of two or more runs among ``runs`` (a CV group, a seed
    group, a sweep trial's folds): {"group", "trial", "runs", "completed" (finished runs), "metric", "estimate"} with the
    same numbers as ``group_summary`` (the CLI) and the Compare page's grouping."""
    by_group: dict[str, list[RunRecord]] = {}
    for run in runs:
        if run.group:
            by_group.setdefault(run.group, []).append(run)
    rows = []
    for group, members in by_group.items():
        for trial, repetition in repetition_sets(members).items():
            if len(repetition) < 2:
                continue
            summary = configuration_summary(store, repetition)["summary"]
            monitor = repetition[0].monitor or repetition[0].config.training.monitor
            for metric in dict.fromkeys((monitor, *RUNS_PAGE_METRICS)):
                if metric in summary:
                    rows.append({
                        "group": group, "trial": trial, "runs": len(repetition),
                        "completed": sum(run.status == RunStatus.FINISHED for run in repetition),
                        "metric": metric, "estimate": statistics.Estimate(**summary[metric]),
                    })
    return rows


def group_summary(store: RunStore, group: str) -> dict[str, Any]:
    """Every configuration of ``group`` (one for a CV or seed group; one per trial in a sweep)."""
    runs = store.list_runs(group=group)
    if not runs:
        raise LabError(f"No runs belong to group {group!r}; `python -m engine runs` shows each run's group.")
    return {
        "group": group,
        "configurations": [
            {"trial": trial, **configuration_summary(store, members)}
            for trial, members in repetition_sets(runs).items()
        ],
    }


__all__ = ["LAST_EPOCH_METRICS", "LAST_SUFFIX", "RUNS_PAGE_METRICS",
           "best_epoch_row", "best_value", "configuration_summary", "estimates",
           "group_rows", "group_summary", "repetition_sets"]
