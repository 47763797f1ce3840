"""The run vocabulary: a run's status and the frozen record the store hands out.

Every page, the CLI, the jobs and the evaluation read runs through these two
types (as MLflow's ``RunStatus`` and KerasTuner's ``TrialStatus``): a status is
a ``RunStatus``, never a bare string, and the sets of statuses that mean
"active", "ended" or "resumable", the labels, badges and colours that show a
status are defined here once.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import positive_class
from engine.config import RunConfig


class RunStatus(enum.StrEnum):
    """Where a run is in its life: queued -> running -> finished / failed / stopped / interrupted / pruned.

    ``pruned``: a sweep's pruner (Optuna's median rule) ended the run early because its
    validation curve was below the other trials'; its epochs are kept.

    A ``StrEnum``, so the store writes the plain value ("running") and a value
    read back compares equal to its member.
    """

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def is_ended(self) -> bool:
        return self in ENDED_STATUSES

    @property
    def is_resumable(self) -> bool:
        return self in RESUMABLE_STATUSES

    @property
    def label(self) -> str:
        """The status as a person reads it ("running")."""
        return self.value

    @property
    def badge(self) -> str:
        """Label with a symbol every font has (a server's browser may lack emoji fonts)."""
        return f"{_STYLE[self][0]} {self.value}"

    @property
    def color(self) -> str:
        """The colour name of ``st.badge`` (gray, blue, green, red, orange, violet)."""
        return _STYLE[self][1]

    @property
    def cell_colors(self) -> tuple[str, str]:
        """(text, background) CSS colours of the status cell in run tables."""
        return _STYLE[self][2]

    @property
    def resume_hint(self) -> str:
        """Why a run in this status cannot be resumed ('' when it can)."""
        return _RESUME_HINTS.get(self, "")

    @classmethod
    def from_badge(cls, badge: str) -> "RunStatus":
        """The status whose ``badge`` is ``badge`` (for styling a table cell that shows it)."""
        for status in cls:
            if status.badge == badge:
                return status
        raise ValueError(f"{badge!r} is not a run status badge")


_STYLE: dict[RunStatus, tuple[str, str, tuple[str, str]]] = {
    RunStatus.QUEUED: ("◌", "gray", ("#4b5563", "#f3f4f6")),
    RunStatus.RUNNING: ("●", "blue", ("#1d4ed8", "#dbeafe")),
    RunStatus.FINISHED: ("✓", "green", ("#15803d", "#dcfce7")),
    RunStatus.FAILED: ("✗", "red", ("#b91c1c", "#fee2e2")),
    RunStatus.STOPPED: ("■", "orange", ("#b45309", "#fef3c7")),
    RunStatus.INTERRUPTED: ("!", "orange", ("#b45309", "#fef3c7")),
    RunStatus.PRUNED: ("✂", "violet", ("#6d28d9", "#ede9fe")),
}
_RESUME_HINTS = {
    RunStatus.QUEUED: "it is already waiting in the queue",
    RunStatus.RUNNING: "it is still running",
    RunStatus.FINISHED: "it has finished; launch a new run (e.g. with more epochs) instead",
    RunStatus.FAILED: "it failed; fix the cause shown with the run and launch it again",
    RunStatus.PRUNED: "its sweep pruned it as a weak trial; launch its configuration as a new run instead",
}

# A worker holds or will hold the run.
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
# The run has an outcome; nothing trains it any more.
ENDED_STATUSES = frozenset(
    {RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.PRUNED}
)
# ``resume`` continues these after their last completed epoch.
RESUMABLE_STATUSES = frozenset({RunStatus.STOPPED, RunStatus.INTERRUPTED})


# Per-epoch metric rows the recorder writes next to Keras' own (loss, accuracy, auc, val_*).
# The optimizer's rate during the epoch (after any schedule); the config's
# ``training.learning_rate`` is the initial rate, and tables call it so.
CURRENT_LR_METRIC = "current_lr"
EPOCH_TIME_METRIC = "epoch_time_s"
SAMPLES_PER_S_METRIC = "samples_per_s"
# Macro-averaged precision and recall over the classes present in the split (the mean per-class value;
# macro recall equals balanced accuracy), from the argmax predictions: recorded as val_macro_* every
# epoch and in the test metrics. Runs recorded before them carry Keras' thresholded precision /
# recall instead (class 1 at P >= 0.5 for two classes, micro-averaged over one-hot outputs for more),
# still shown under their own names, titled as such.
MACRO_PRECISION_METRIC = "macro_precision"
MACRO_RECALL_METRIC = "macro_recall"
# What a metric's name alone does not say (keyed by the name without "val_").
METRIC_NOTES = {
    "precision": "Keras, thresholded at 0.5: class 1 or micro-averaged; older runs",
    "recall": "Keras, thresholded at 0.5: class 1 or micro-averaged; older runs",
}


def metric_title(name: str) -> str:
    """How pickers name a metric: its name, with a note where the name alone misleads
    ("val_recall (Keras, thresholded at 0.5: ...)"); "val_macro_recall" says what it is."""
    base = name[len("val_"):] if name.startswith("val_") else name
    note = METRIC_NOTES.get(base)
    return name if note is None else f"{name} ({note})"
# Every learning-rate range test (lr-find) is recorded as a run with this tag; the Runs page hides them
# unless asked.
LR_FIND_TAG = "lr-find"


def fold_label(config: RunConfig) -> str | None:
    """"1/3" for the first of three folds: folds are numbered from 1 wherever they are shown (pages, CLI,
    run names); the config keeps its 0-based ``data.fold``. None outside cross-validation."""
    data = config.data
    return None if data.fold is None or not data.folds else f"{data.fold + 1}/{data.folds}"


_RUN_REFERENCE = re.compile(r"^\s*(?:run:|#)?\s*(\d+)\s*$")


def run_reference(text: str) -> int | None:
    """The run id ``training.init_from`` names ("run:12", "#12" or "12"); None when it names a file."""
    matched = _RUN_REFERENCE.match(text)
    return int(matched.group(1)) if matched else None


class TrialOutcome(enum.StrEnum):
    """How a sweep's trial (one configuration, one run per fold) ended, as told to its search."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"


@dataclass(frozen=True)
class SweepRecord:
    """One sweep as stored: its spec (JSON-ready dict, engine/sweeps/spec.py) and where it is."""

    id: int
    name: str
    spec: Mapping[str, Any]
    created_at: float
    stop_requested: bool = False
    finished_at: float | None = None

    @property
    def group(self) -> str:
        """The group id its runs carry (for display and grouping; they also carry ``sweep_id``)."""
        return f"sweep-{self.id}"


@dataclass(frozen=True)
class TrialRecord:
    """One configuration a sweep tried: its parameters, and its objective once all its runs ended."""

    sweep_id: int
    trial: int
    params: Mapping[str, Any] | None
    created_at: float
    # Optuna's trial number in the sweep's study (method optuna; public, unlike its storage's trial id).
    optuna_trial_number: int | None = None
    outcome: TrialOutcome | None = None
    value: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: its whole config, status, timings, data facts and results.

    Frozen: a record is a snapshot; ask the store again for a fresher one.
    """

    id: int
    name: str
    status: RunStatus
    config: RunConfig
    created_at: float
    epochs_total: int
    epochs_done: int = 0
    # When the run last entered the queue (its launch, or a resume).
    queued_at: float | None = None
    dataset_fingerprint: str | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    # Samples per split, e.g. {"train": 70, "val": 15, "test": 15}; indices live in runs/<id>/splits.json.
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    host: str | None = None
    # The GPU index pinned with CUDA_VISIBLE_DEVICES, "cpu", or "foreground" for `python -m engine train`.
    slot: str | None = None
    heartbeat_at: float | None = None
    monitor: str | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    # Test metrics of the best weights, e.g. {"accuracy": 0.91, "auc": 0.99, "loss": 0.3, "epoch": 7}.
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    stop_requested: bool = False
    resume_from_epoch: int | None = None
    # The fold / seed / sweep group the run belongs to ("cv-1a2b3c", "sweep-4"), or None: for display and
    # grouping; which sweep a run belongs to is ``sweep_id``, never parsed out of this string.
    group: str | None = None
    # Within a sweep: the trial (one configuration) the run is a fold of; None outside sweeps.
    trial: int | None = None
    # The sweep whose trial this run is (schema 8); None outside sweeps.
    sweep_id: int | None = None
    error: str | None = None
    traceback: str | None = None
    # What a person adds to a run (Compare and Runs pages, `tag` / `note` / `archive` commands).
    tags: tuple[str, ...] = ()
    notes: str = ""
    # Archived runs are hidden from run lists unless asked for; nothing else changes.
    archived: bool = False
    # Parameters of the built model; None until the worker has built it (or for runs from before schema 3).
    num_params: int | None = None
    # Who launched it: a dashboard session or login identity (ui/access.py); None from the CLI.
    owner: str | None = None
    # Lineage: the run whose weights this one started from (training.init_from names a run); None when it
    # trained from scratch or from an uploaded weights file (schema 7; set by the worker when it loads them).
    parent_run: int | None = None

    @property
    def started_from(self) -> str:
        """How pages name where the weights came from: "#12" (a run), a weights file's name, or "" (scratch)."""
        if self.parent_run is not None:
            return f"#{self.parent_run}"
        init_from = self.config.training.init_from
        if not init_from:
            return ""
        run_id = run_reference(init_from)
        return f"#{run_id}" if run_id is not None else init_from.strip().replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def lineage(self) -> str:
        """The run's kind and origin in a few words, for run tables: "pretraining", "from #12",
        "pretraining from #3", "from encoder.keras", or "" (a classifier trained from scratch)."""
        parts = ["pretraining"] if self.is_pretraining else []
        if self.started_from:
            parts.append(f"from {self.started_from}")
        return " ".join(parts)

    @property
    def is_pretraining(self) -> bool:
        """Whether this run is self-supervised pretraining (training.pretext) rather than a classifier."""
        return self.config.training.pretext != "none"

    @property
    def dataset(self) -> str:
        return self.config.data.dataset

    @property
    def architecture(self) -> str:
        return self.config.model.architecture

    @property
    def positive_class(self) -> str | None:
        """The class this run's two-class numbers are for (sensitivity, ROC / PR, the threshold); None for
        more classes. The one place a run's positive class is resolved (engine/positive_class.py): the
        recorded data.positive_class, or the second class for runs recorded before it existed."""
        names = [str(name) for name in self.class_names] or [str(index) for index in range(self.num_classes or 0)]
        return positive_class.resolve(names, self.config.data.positive_class)

    @property
    def positive_class_chosen(self) -> bool:
        """Whether the positive class was recorded with the run (False: an older run, the second class)."""
        return self.positive_class is not None and self.config.data.positive_class == self.positive_class

    @property
    def label(self) -> str:
        """"#12 my run": how pages name a run."""
        return f"#{self.id} {self.name}".strip()

    @property
    def is_lr_find(self) -> bool:
        """Whether this run is a learning-rate range test rather than a training run."""
        return LR_FIND_TAG in self.tags

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to finish (or to now while the run is active); None before it started."""
        if not self.started_at:
            return None
        end = self.finished_at or (time.time() if now is None else now)
        return max(0.0, end - self.started_at)

    def owned_by(self, pid: int) -> bool:
        """Whether process ``pid`` still holds this run (it is running, with that pid recorded)."""
        return self.status == RunStatus.RUNNING and self.pid == pid

    def heartbeat_age(self, now: float | None = None) -> float | None:
        """Seconds since the worker's last sign of life (heartbeat, else start, else creation)."""
        beat = next((t for t in (self.heartbeat_at, self.started_at, self.created_at) if t is not None), None)
        return None if beat is None else max(0.0, (time.time() if now is None else now) - beat)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``show --json``): the config as a nested dict, the status as its value."""
        result = {name: getattr(self, name) for name in self.__dataclass_fields__}
        result.update(
            status=self.status.value,
            config=self.config.to_dict(),
            dataset=self.dataset,
            architecture=self.architecture,
            class_names=list(self.class_names),
            positive_class=self.positive_class,
            tags=list(self.tags),
            split_sizes=dict(self.split_sizes),
            test_metrics=dict(self.test_metrics),
        )
        return result


__all__ = [
    "ACTIVE_STATUSES",
    "CURRENT_LR_METRIC",
    "ENDED_STATUSES",
    "fold_label",
    "EPOCH_TIME_METRIC",
    "MACRO_PRECISION_METRIC",
    "MACRO_RECALL_METRIC",
    "METRIC_NOTES",
    "LR_FIND_TAG",
    "RESUMABLE_STATUSES",
    "RunRecord",
    "RunStatus",
    "SAMPLES_PER_S_METRIC",
    "SweepRecord",
    "TrialOutcome",
    "TrialRecord",
    "metric_title",
    "run_reference",
]
