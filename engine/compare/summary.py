"""The selected runs together: groups by a config field, their curves as series, and the summary tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine import statistics
from engine.compare.configs import (
    _cell, _key, config_fields, differing_fields, effective_config, field_value, preset_fields,
)
from engine.compare.history import (
    MAX_DRAWN_POINTS, VALIDATION_PREFIX, CompareError, History, _finite, best_epoch, curve, downsample, mean_metric,
    monitor_of, result_epoch, smooth, value_at,
)
from engine.runs import SAMPLES_PER_S_METRIC, RunRecord
from engine.store import RunStore


# ------------------------------------------------------------------ groups
@dataclass(frozen=True)
class Group:
    field: str
    value: Any
    run_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.field} = {_cell(self.value)} ({len(self.run_ids)} runs)"

    @property
    def is_single(self) -> bool:
        return len(self.run_ids) == 1


def group_runs(runs: Sequence[RunRecord], field_name: str) -> list[Group]:
    """Runs that share a value of ``field_name``, in order of first appearance in ``runs``."""
    if not runs:
        return []
    if field_name not in config_fields(runs):
        raise CompareError(
            f"{field_name!r} is not a config field of these runs; group by one of {', '.join(config_fields(runs))}."
        )
    groups: dict[str, tuple[Any, list[int]]] = {}
    for run in runs:
        value = field_value(run, field_name)
        groups.setdefault(_key(value), (value, []))[1].append(run.id)
    return [Group(field_name, value, tuple(ids)) for value, ids in groups.values()]


def group_band(curves: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, std) over the runs' curves, aligned by epoch: at each epoch that any run reached, the
    mean and sample std (ddof=1; 0 where one run reached it) over the runs that reached it; x is the mean of
    their x."""
    by_epoch: dict[float, list[tuple[float, float]]] = {}
    for x, y, run_epochs in curves:
        for xi, yi, epoch in zip(x, y, run_epochs):
            by_epoch.setdefault(float(epoch), []).append((float(xi), float(yi)))
    epochs = sorted(by_epoch)
    xs = np.array([np.mean([p[0] for p in by_epoch[e]]) for e in epochs], dtype=float)
    means = np.array([np.mean([p[1] for p in by_epoch[e]]) for e in epochs], dtype=float)
    stds = np.array([np.std([p[1] for p in by_epoch[e]], ddof=1) if len(by_epoch[e]) > 1 else 0.0
                     for e in epochs], dtype=float)
    return xs, means, stds


# --------------------------------------------------------------- comparison
@dataclass
class Comparison:
    """The selected runs (in selection order) with their whole epoch histories and test evaluations."""

    runs: list[RunRecord]
    histories: dict[int, History]
    # run id -> {"balanced_accuracy", "sensitivity", "specificity", "epoch"} from the stored test predictions
    tests: dict[int, dict[str, float | None]] = field(default_factory=dict)

    @property
    def run_ids(self) -> list[int]:
        return [run.id for run in self.runs]

    def run(self, run_id: int) -> RunRecord:
        return next(run for run in self.runs if run.id == run_id)


def load(store: RunStore, run_ids: Sequence[int], with_tests: bool = True) -> Comparison:
    """The runs and their histories (one metrics query for all of them) and their test evaluations."""
    by_id = {run.id: run for run in store.list_runs(ids=list(run_ids))}
    missing = [run_id for run_id in run_ids if run_id not in by_id]
    if missing:
        raise CompareError(
            f"There is no run with id {missing[0]}; `python -m engine runs --archived` lists every run."
        )
    runs = [by_id[run_id] for run_id in run_ids]
    histories = store.epoch_histories([run.id for run in runs])
    tests = {run.id: test_evaluation(store, run) for run in runs} if with_tests else {}
    return Comparison(runs, histories, tests)


def test_evaluation(store: RunStore, run: RunRecord) -> dict[str, float | None]:
    """Balanced accuracy and, for two classes, sensitivity and specificity of the run's positive class
    (``RunRecord.positive_class``) on the test split, from the test predictions stored with the best
    weights; {} when the run has none.

    The same numbers as ``engine.evaluation.evaluate_run(store, run.id, "test")`` (a test checks it),
    from its confusion counts alone: the ROC / PR curves it also computes would cost most of a
    20-run comparison's time.
    """
    from engine.evaluation import metrics  # scikit-learn is loaded only when a comparison needs it

    stored = store.get_predictions(run.id, "test")
    if stored is None or not len(stored["labels"]):
        return {}
    num_classes = int(stored["probabilities"].shape[1])
    counts = metrics.confusion_counts(stored["labels"], metrics.predicted_labels(stored["probabilities"]), num_classes)
    support = counts.sum(axis=1)
    recall = np.diag(counts) / np.maximum(support, 1)
    result: dict[str, float | None] = {
        "balanced_accuracy": float(np.mean(recall[support > 0])),  # mean recall over classes present
        "epoch": int(stored["epoch"]),
    }
    positive = run.positive_class
    if num_classes == 2 and positive is not None:
        names = [str(name) for name in run.class_names] or ["0", "1"]
        index = names.index(positive)
        specificity = metrics.specificity(counts)[index]
        result.update(sensitivity=float(recall[index]),
                      specificity=None if np.isnan(specificity) else float(specificity))
    return result


@dataclass(frozen=True)
class Series:
    """One line of the curves: a run's metric, or a group's mean with its std band (``std`` not None).

    ``run_ids`` are the runs it stands for; the page colours it like its first run.
    """

    label: str
    metric: str
    run_ids: tuple[int, ...]
    x: np.ndarray
    y: np.ndarray
    std: np.ndarray | None = None

    @property
    def is_validation(self) -> bool:
        return self.metric.startswith(VALIDATION_PREFIX)


def curve_series(comparison: Comparison, metric: str, *, training: bool = True, validation: bool = True,
                 axis: str = "epoch", smoothing: float = 0.0, group_by: str | None = None,
                 max_points: int = MAX_DRAWN_POINTS) -> list[Series]:
    """The lines to draw for ``metric`` ("loss" stands for loss and, with ``validation``, val_loss).

    Smoothing, then downsampling to ``max_points``, apply to what is drawn only.
    With ``group_by``, a group of two or more runs is one mean line with a std band.
    """
    names = [name for name, wanted in ((metric, training), (VALIDATION_PREFIX + metric, validation)) if wanted]
    groups = group_runs(comparison.runs, group_by) if group_by else [
        Group("", None, (run.id,)) for run in comparison.runs
    ]
    series = []
    for group in groups:
        for name in names:
            curves = []
            for run_id in group.run_ids:
                run = comparison.run(run_id)
                x, y, epochs = curve(comparison.histories.get(run_id, []), name, axis, run.started_at)
                if len(y):
                    curves.append((x, y, epochs))
            if not curves:
                continue
            if group.is_single:
                (x, y, _), std = curves[0], None
                label = comparison.run(group.run_ids[0]).label
            else:
                x, y, std = group_band(curves)
                label = group.label
            y = smooth(y, smoothing)
            keep = downsample(len(y), y, max_points)
            series.append(Series(label, name, group.run_ids, x[keep], y[keep], None if std is None else std[keep]))
    return series


SUMMARY_NUMBERS = (
    "best epoch", "best value", "result", "test accuracy", "test AUC", "test balanced accuracy",
    "test sensitivity", "test specificity", "parameters", "epochs", "wall time (s)", "samples/s",
)


def run_summary(comparison: Comparison, run: RunRecord, result_metric: str, at: str = "best") -> dict[str, Any]:
    """One run's row of the summary table (numbers as numbers, None where the run has none)."""
    history = comparison.histories.get(run.id, [])
    monitor = monitor_of(run)
    best = best_epoch(history, monitor)
    test = comparison.tests.get(run.id, {})
    return {
        "run": run.label,
        "run id": run.id,
        "status": run.status.label,
        "lineage": run.lineage,  # the run it started from (transfer learning), or pretraining
        "monitor": monitor,
        "best epoch": best[0] if best else None,
        "best value": best[1] if best else None,
        "result": value_at(history, result_metric, result_epoch(history, monitor, at)),
        "test accuracy": run.test_metrics.get("accuracy"),
        "test AUC": run.test_metrics.get("auc"),
        "test balanced accuracy": test.get("balanced_accuracy"),
        "positive class": run.positive_class,
        "test sensitivity": test.get("sensitivity"),
        "test specificity": test.get("specificity"),
        "parameters": run.num_params,
        "epochs": run.epochs_done,
        "wall time (s)": run.duration(),
        "samples/s": mean_metric(history, SAMPLES_PER_S_METRIC),
    }


def summary_frame(comparison: Comparison, result_metric: str, at: str = "best",
                  group_by: str | None = None) -> pd.DataFrame:
    """The summary table: one row per run, or with ``group_by`` one row per group of two or more runs
    (numbers are the group's mean, with a "<column> std" column next to each, and for the result its
    interval in "<result> low" / "<result> high" / "<result> clipped") and one per lone run.

    The "result" column is ``result_metric`` at each run's best (or last) epoch; it is renamed
    "<metric> @ best" / "@ last" so the choice shows in the table and the CSV.
    """
    rows = {run.id: run_summary(comparison, run, result_metric, at) for run in comparison.runs}
    result_column = f"{result_metric} @ {at}"
    if not group_by:
        frame = pd.DataFrame(list(rows.values()))
        return frame.rename(columns={"result": result_column})
    out = []
    for group in group_runs(comparison.runs, group_by):
        members = [rows[run_id] for run_id in group.run_ids]
        if group.is_single:
            out.append({**members[0], "group": _cell(group.value), "runs": 1})
            continue
        row: dict[str, Any] = {"run": group.label, "run id": None, "group": _cell(group.value),
                               "runs": len(members), "status": "", "monitor": members[0]["monitor"],
                               # Sensitivity means are over one positive class only when the members share it.
                               "positive class": _shared_value([member["positive class"] for member in members]),
                               "lineage": _shared_value([member["lineage"] for member in members])}
        for column in SUMMARY_NUMBERS:
            metric = result_metric if column == "result" else column
            estimate = group_estimate(metric, [member[column] for member in members])
            row[column] = estimate.mean if estimate else None
            row[f"{column} std"] = estimate.std if estimate else None
            if column == "result":
                row["result low"] = estimate.low if estimate else None
                row["result high"] = estimate.high if estimate else None
                row["result clipped"] = bool(estimate and estimate.clipped)
        out.append(row)
    frame = pd.DataFrame(out)
    return frame.rename(columns={name: name.replace("result", result_column, 1) for name in frame.columns
                                 if name.startswith("result")})


def group_estimate(metric: str, values: Sequence[float | None]) -> statistics.Estimate | None:
    """Mean, sample std and interval (within ``metric``'s range) over the values that are numbers."""
    return statistics.metric_estimate(metric, [value for value in values if _finite(value)])


def _shared_value(values: Sequence[Any]) -> Any:
    """The one value every member has, or "mixed" when they differ."""
    distinct = set(values)
    return values[0] if len(distinct) == 1 else "mixed"


def group_stat(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """(mean, sample std) over the values that are numbers (std None for one); (None, None) when none is."""
    estimate = statistics.estimate([value for value in values if _finite(value)])
    return (None, None) if estimate is None else (estimate.mean, estimate.std)


def hyperparameter_frame(comparison: Comparison, result_metric: str, at: str = "best") -> pd.DataFrame:
    """One row per run: its label, the effective value of every config field that differs between the runs
    (a preset's default filled in, so no run drops out of a plot), and the result.

    ``frame.attrs["from_preset"]`` maps each field to one bool per row: whether the preset decided it.
    """
    fields = differing_fields(comparison.runs)
    rows: list[dict[str, Any]] = []
    from_preset: dict[str, list[bool]] = {name: [] for name in fields}
    for run in comparison.runs:
        history = comparison.histories.get(run.id, [])
        flat, preset = effective_config(run.config), preset_fields(run.config)
        if flat.get("data.fold") is not None:
            flat["data.fold"] += 1  # folds are numbered from 1 wherever they are shown (engine.runs.fold_label)
        row = {"run id": run.id, "run": run.label, **{name: flat.get(name) for name in fields}}
        row[result_metric] = value_at(history, result_metric, result_epoch(history, monitor_of(run), at))
        rows.append(row)
        for name in fields:
            from_preset[name].append(name in preset)
    frame = pd.DataFrame(rows, columns=["run id", "run", *fields, result_metric])
    frame.attrs["from_preset"] = from_preset
    return frame


def confusion_epoch(comparison: Comparison, run: RunRecord, at: str = "best") -> int | None:
    """The validation epoch whose confusion matrix the page shows for ``at`` (best or last)."""
    return result_epoch(comparison.histories.get(run.id, []), monitor_of(run), at)
