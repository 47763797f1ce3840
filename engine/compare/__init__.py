"""Comparing runs: filters, config differences, best epochs, groups and the summary table.

Everything here is plain data in, plain data out, so the Compare page, the
``compare`` command and the tests show the same numbers. The page draws what
these functions return; it computes nothing itself.

Conventions, each decided once here:
- A run's *best epoch* is the epoch whose monitored metric (``run.monitor``,
  e.g. ``val_loss``) is lowest for a loss and highest otherwise, read from the
  stored history (the first such epoch on ties, as Keras' checkpoint keeps
  the first). A *result metric* is taken at that epoch, or at the last epoch
  when asked (``at="last"``).
- A *group* is the runs that share one value of a config field (as W&B's
  "group by"). Its curves and table cells are the mean and the sample
  standard deviation (ddof=1) over its runs, and its result has a 95 %
  interval within the metric's range: ``engine.statistics.metric_estimate``,
  the same numbers as ``python -m engine group`` and the Runs page. A group
  of one run is shown as that run.
- Curves are downsampled for drawing only (``downsample``); tables always read
  the whole history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine import statistics
from engine.config import PRESET_KNOBS, RunConfig
from engine.errors import LabError
from engine.runs import SAMPLES_PER_S_METRIC, RunRecord, RunStatus, fold_label
from engine.store import RunStore

History = list[dict[str, Any]]  # [{"epoch": 1, "loss": ..., "val_loss": ..., "_wall_time": t}, ...]
RESULT_AT = ("best", "last")
AXES = ("epoch", "time")
VALIDATION_PREFIX = "val_"
# Traces longer than this are thinned for drawing (the extremes are kept).
MAX_DRAWN_POINTS = 400
# The run columns of the selection table that are not config fields.
RUN_FIELDS = ("name", "status", "tags", "created")


class CompareError(LabError):
    """A comparison asked for something the runs do not have (an unknown field or metric, too few runs)."""


# ----------------------------------------------------------------- config
def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = ", ".join(str(item) for item in value)
    else:
        out[prefix] = value


def flat_config(config: RunConfig) -> dict[str, Any]:
    """The config as dotted fields: {"training.learning_rate": 0.001, "data.options.num_samples": 400, ...}
    (lists joined with ", "; the run's name is not a config field here)."""
    raw = config.to_dict()
    raw.pop("name", None)
    out: dict[str, Any] = {}
    _flatten("", raw, out)
    return out


PRESET_MARK = "(preset)"


def preset_fields(config: RunConfig) -> set[str]:
    """The dotted model fields whose value this config leaves to its preset (None in the config)."""
    return {f"model.{knob}" for knob in PRESET_KNOBS if getattr(config.model, knob) is None}


def effective_config(config: RunConfig) -> dict[str, Any]:
    """``flat_config`` with every knob the preset decides replaced by the preset's value, so a table or a
    plot shows what the model was built with ("model.dropout_rate": 0.0, not None); ``preset_fields`` says
    which of them came from the preset."""
    from engine.models import registry  # plain Python: the presets' reference values

    flat = flat_config(config)
    try:
        defaults = registry.get_spec(config.model.architecture).defaults
    except LabError:
        return flat  # an unknown preset (a run from an older lab): leave its fields as recorded
    for name in preset_fields(config):
        knob = name.split(".", 1)[1]
        if knob in defaults:
            flat[name] = defaults[knob]
    return flat


def effective_cell(config: RunConfig, name: str) -> str:
    """A field's effective value as table text: "0.3 (preset)" when the preset decided it, "0" otherwise."""
    value = effective_config(config).get(name)
    text = _cell(value) if value is not None else ""
    return f"{text} {PRESET_MARK}" if name in preset_fields(config) else text


def _key(value: Any) -> str:
    """A canonical text for comparing and grouping values (1 and 1.0 are the same value)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def config_fields(runs: Sequence[RunRecord]) -> list[str]:
    """Every dotted config field that any of ``runs`` has, in config order."""
    fields: dict[str, None] = {}
    for run in runs:
        fields.update(dict.fromkeys(flat_config(run.config)))
    return list(fields)


def differing_fields(runs: Sequence[RunRecord]) -> list[str]:
    """The config fields whose effective values (a preset's default filled in) are not the same in every
    one of ``runs``."""
    flats = [effective_config(run.config) for run in runs]
    return [name for name in config_fields(runs) if len({_key(flat.get(name)) for flat in flats}) > 1]


def config_table(runs: Sequence[RunRecord], only_differences: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """(table with one row per config field and one column per run label, the differing fields).

    Cells are text: the effective value, marked "(preset)" where the preset decided it ("0.3 (preset)").
    """
    differing = differing_fields(runs)
    names = differing if only_differences else config_fields(runs)
    columns = {}
    for run in runs:
        flat, from_preset = effective_config(run.config), preset_fields(run.config)
        if flat.get("data.fold") is not None:
            flat["data.fold"] = fold_label(run.config)  # "1/3", as folds are numbered wherever shown
        columns[run.label] = [_cell(flat.get(name, "")) + (f" {PRESET_MARK}" if name in from_preset else "")
                              for name in names]
    frame = pd.DataFrame(columns, index=pd.Index(names, name="field"))
    return frame, differing


def _cell(value: Any) -> str:
    if value is None:
        return "none"  # a field left unset (data.folds without CV); a preset's knob is filled in before
    if isinstance(value, float):
        return f"{value:.4g}"  # 4 significant digits, as the summary and the Sweeps page show numbers
    return str(value)


def field_value(run: RunRecord, name: str) -> Any:
    """The effective value of a dotted config field of ``run`` (None when the run has no such field)."""
    return effective_config(run.config).get(name)


# ----------------------------------------------------------------- filters
@dataclass(frozen=True)
class RunFilter:
    """What the selection table shows; every part that is set must match (empty parts match all)."""

    name: str = ""  # part of the name, any case
    datasets: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    statuses: tuple[RunStatus, ...] = ()
    tags: tuple[str, ...] = ()  # runs carrying any of these
    created_after: float | None = None  # timestamps, inclusive
    created_before: float | None = None
    field: str = ""  # a dotted config field ...
    value: str = ""  # ... and the value it must have (numbers compare as numbers, text without case)


def _value_matches(value: Any, wanted: str, from_preset: bool = False) -> bool:
    wanted = wanted.strip()
    if from_preset and wanted.lower() in ("preset", "preset default", PRESET_MARK):
        return True
    if value is None:
        return wanted.lower() in ("", "none", "null", "preset default")
    try:
        return math.isclose(float(value), float(wanted), rel_tol=1e-9) and not isinstance(value, str)
    except (TypeError, ValueError):
        return str(value).strip().lower() == wanted.lower()


def filter_runs(runs: Iterable[RunRecord], run_filter: RunFilter) -> list[RunRecord]:
    """The runs that match every part of ``run_filter`` (order kept)."""
    wanted_name = run_filter.name.strip().lower()
    wanted_tags = set(run_filter.tags)
    statuses = {RunStatus(status) for status in run_filter.statuses}
    kept = []
    for run in runs:
        if wanted_name and wanted_name not in run.name.lower():
            continue
        if run_filter.datasets and run.dataset not in run_filter.datasets:
            continue
        if run_filter.architectures and run.architecture not in run_filter.architectures:
            continue
        if statuses and run.status not in statuses:
            continue
        if wanted_tags and not wanted_tags & set(run.tags):
            continue
        if run_filter.created_after is not None and run.created_at < run_filter.created_after:
            continue
        if run_filter.created_before is not None and run.created_at > run_filter.created_before:
            continue
        if run_filter.field and run_filter.value.strip():
            flat = effective_config(run.config)
            if run_filter.field not in flat or not _value_matches(
                    flat[run_filter.field], run_filter.value, run_filter.field in preset_fields(run.config)):
                continue
        kept.append(run)
    return kept


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


def _finite(value: Any) -> bool:
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
    for x, y, epochs in curves:
        for xi, yi, epoch in zip(x, y, epochs):
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


def mean_metric(history: History, metric: str) -> float | None:
    values = [row[metric] for row in history if _finite(row.get(metric))]
    return float(np.mean(values)) if values else None


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
    rows, from_preset = [], {name: [] for name in fields}
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


__all__ = [
    "AXES", "Comparison", "CompareError", "Group", "RESULT_AT", "RunFilter",
    "Series", "best_epoch", "config_fields", "curve_series", "default_result_metric", "config_table", "confusion_epoch", "curve", "curve_metrics",
    "differing_fields", "downsample", "effective_cell", "effective_config", "PRESET_MARK",
    "preset_fields", "field_value", "filter_runs", "flat_config", "group_band", "group_runs",
    "group_estimate", "group_stat", "hyperparameter_frame", "load", "lower_is_better", "metric_names", "monitor_of",
    "result_epoch", "run_summary", "smooth", "summary_frame", "test_evaluation", "value_at",
]
