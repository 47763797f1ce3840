"""The run store's interface: the methods the rest of the lab calls.

Runs come back as frozen ``RunRecord``s; metric rows, predictions and events as
plain dicts and arrays. A backend implements the abstract methods; the
conveniences (``request_stop``, ``heartbeat``, ``epoch_history``) are built on
them here, once, as MLflow's ``AbstractStore.log_metric`` is built on
``log_batch``. ``engine.store.sql.SqlRunStore`` is the implementation
(SQLAlchemy Core over SQLite or Postgres).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from engine.config import RunConfig
from engine.runs import RunRecord, RunStatus, SweepRecord, TrialOutcome, TrialRecord

# A metric row: {"kind": "epoch" | "batch" | "test", "epoch": n, "name": ..., "value": ...,
# optional "step" (batch index) and "wall_time"}.
MetricRow = dict[str, Any]
METRIC_KINDS = ("epoch", "batch", "test")
PREDICTION_SPLITS = ("val", "test")


class AdmissionView(abc.ABC):
    """What an admission check may read inside the serialised transaction that then records the runs."""

    @abc.abstractmethod
    def active_owners(self) -> list[str | None]:
        """The owner of every run queued or running (None: the operator's), one entry per run."""

    @abc.abstractmethod
    def owner_runs_since(self, owner: str, since: float) -> list[tuple[float, float | None, float | None]]:
        """(created_at, started_at, finished_at) of ``owner``'s runs created, or still running or finished,
        at or after ``since`` (a daily quota counts the launches and the training time)."""


# Called inside the write transaction that queues runs; raises (e.g. DemoLimitError) to refuse.
Admission = Callable[[AdmissionView], None]


class RunStore(abc.ABC):
    """The lab's record of runs, metrics, predictions, events, sweeps and revoked share links.

    Concurrency contract (every backend keeps it; written in the manner of Optuna's ``BaseStorage``):

    Processes and threads.
        One database is shared by many processes at once: the dashboard's sessions, the CLI, one worker
        per run (``python -m engine worker``), a warm standby, the stop helper. Each process opens its own
        store (``open_store``); a store object is shared by the threads of its process (the worker's
        heartbeat thread writes while ``fit`` records), so every method is thread-safe.

    Atomic decisions: the methods that settle a race, and what each guarantees.
        - ``create_runs`` and ``requeue``: the admission check and the insert (or the move back to
          ``queued``) are one serialised write transaction; two launches at once can never both pass a
          cap that only one fits, and a refused batch leaves no run behind.
        - ``claim_next_queued``: one queued run goes to exactly one claimer, on a slot no running run
          holds; claimers in separate processes are serialised.
        - ``transition``: a compare-and-set of the status (``from_statuses``, and with ``owner_pid`` the
          holding process) in one statement; of two processes racing (a stop and a worker finishing,
          reconcile and a worker that was only suspended) exactly one gets True.
        - ``heartbeat``: writes only while ``owner_pid`` still holds the run; False otherwise.
        - ``claim_trial`` and ``end_trial``: a sweep's trial number is handed out once, within its
          bounds; a trial's outcome is recorded once (True for the one caller that then tells the search).
        - ``log_metrics``: all rows or none; ``DuplicateMetrics`` when the run already has a row for the
          same epoch, name (and step), so a second trainer can never append to another's history.
        - ``restore_run``: the run and its metric rows replace any run of that id in one transaction.

    Ownership of a running run.
        A run in ``running`` is written (metrics, predictions, its progress fields) only by the process
        whose pid it records; that process checks ``transition``/``heartbeat`` results and stops writing
        when they say it lost the run. Other processes may only ask it to stop (``request_stop``, a flag
        the owner polls) or, when its heartbeat is stale, move it with ``transition``. Ended runs change
        only through ``update_run`` of curation fields (name, tags, notes, archived) and ``delete_run``.

    Plain reads and writes.
        ``update_run``, ``update_sweep``, ``set_trial``, ``save_predictions`` (a replace of the same epoch),
        ``log_event``, ``discard_after_epoch`` and ``revoke_share`` are single transactions with
        last-writer-wins semantics; callers use them on rows they own (see above) or on fields nobody races
        for. A write is visible to every process once the method returns (committed; SQLite in WAL mode,
        or Postgres). Reads (``get_*``, ``list_*``, ``stop_requested``, ``prediction_epochs``,
        ``share_revoked``) see committed data only, each call a consistent snapshot of its own;
        ``get_metrics``/``get_events`` with ``after_id`` return every row committed before the call
        with a larger id; a run's rows come from its one owner, in id order, so incremental live reads
        of a run lose nothing.
    """

    url: str

    # ---------------------------------------------------------------- runs
    @abc.abstractmethod
    def create_run(
        self, config: RunConfig, status: RunStatus = RunStatus.QUEUED, *, group: str | None = None,
        trial: int | None = None, owner: str | None = None, sweep_id: int | None = None,
    ) -> int:
        """Record a new run with its whole config (and its group, its sweep and trial, and the identity that
        launched it); returns its id (its name defaults to run-ID)."""

    @abc.abstractmethod
    def create_runs(
        self, configs: Sequence[RunConfig], *, group: str | None = None, trial: int | None = None,
        owner: str | None = None, admit: Admission | None = None, sweep_id: int | None = None,
    ) -> list[int]:
        """Queue several new runs in ONE write transaction: ``admit`` (when given) is called inside it with
        the owners of the runs already queued or running, and may raise to refuse; then all are inserted,
        or none. Two processes admitting at once are serialised, so no interleaving exceeds a cap."""

    @abc.abstractmethod
    def requeue(self, run_id: int, *, from_statuses: Iterable[RunStatus], admit: Admission | None = None,
                **fields: Any) -> bool:
        """``transition(run_id, QUEUED, ...)`` with ``admit`` called first in the same serialised transaction
        (a resume counts against the same caps as a launch); True when the run moved."""

    @abc.abstractmethod
    def restore_run(self, fields: dict[str, Any], metrics: Iterable[MetricRow]) -> None:
        """Record a run under its own id (``fields["id"]``) with its metric rows, replacing any run of that
        id, in one transaction: a run recovered from its folder (engine/store/journal.py)."""

    @abc.abstractmethod
    def get_run(self, run_id: int) -> RunRecord:
        """The run; raises ``RunNotFound`` for an unknown id."""

    @abc.abstractmethod
    def list_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
        archived: bool | None = None,
        group: str | None = None,
        sweep_id: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only these statuses / ids / this group / this sweep's; ``archived``
        False hides archived runs (True lists only them, None both)."""

    @abc.abstractmethod
    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run (never its status: use ``transition``)."""

    @abc.abstractmethod
    def transition(
        self,
        run_id: int,
        to_status: RunStatus,
        *,
        from_statuses: Iterable[RunStatus],
        owner_pid: int | None = None,
        **fields: Any,
    ) -> bool:
        """Move a run to ``to_status`` only if it is in one of ``from_statuses`` (and, with ``owner_pid``,
        still held by that process) in one atomic statement; True when it moved, so two processes racing
        (a stop and a worker finishing, or a trainer whose run was taken over) cannot both win."""

    @abc.abstractmethod
    def claim_next_queued(self, slots: Sequence[str]) -> tuple[int, str] | None:
        """Atomically move the oldest queued run to ``running`` on a free slot; (run_id, slot) or None."""

    @abc.abstractmethod
    def stop_requested(self, run_id: int) -> bool:
        """Whether a stop was asked for (read by the recording callback while it trains)."""

    @abc.abstractmethod
    def delete_run(self, run_id: int) -> None:
        """Remove the run and every row recorded for it (its folder is engine.compare.curation.delete_run's job)."""

    # ------------------------------------------------------------- metrics
    @abc.abstractmethod
    def log_metrics(self, run_id: int, rows: Iterable[MetricRow]) -> None:
        """Insert metric rows (the one primitive for metrics); ``DuplicateMetrics`` when the run already
        has a row for the same epoch and name (and step): a second trainer cannot append to its history."""

    @abc.abstractmethod
    def get_metrics(self, run_ids: int | Sequence[int], after_id: int = 0, kind: str | None = None) -> list[MetricRow]:
        """Metric rows with id > ``after_id``, oldest first (incremental reads for live curves)."""

    @abc.abstractmethod
    def discard_after_epoch(self, run_id: int, epoch: int) -> None:
        """Drop metrics and predictions recorded after ``epoch`` (a resume continues from there)."""

    # --------------------------------------------------------- predictions
    @abc.abstractmethod
    def save_predictions(
        self, run_id: int, epoch: int, split: str, sample_ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """Store one epoch's predictions for a split (replacing an earlier copy of the same epoch)."""

    @abc.abstractmethod
    def prediction_epochs(self, run_id: int, split: str) -> list[int]:
        """The epochs with stored predictions for ``split``, ascending."""

    @abc.abstractmethod
    def get_predictions(self, run_id: int, split: str, epoch: int | None = None) -> dict[str, Any] | None:
        """{"epoch", "sample_ids", "labels", "probabilities" (N, C)} for an epoch (default: the latest)."""

    # -------------------------------------------------------------- events
    @abc.abstractmethod
    def log_event(self, run_id: int, message: str, level: str = "info") -> None:
        """One line of the run's history (queued, started, stopped, ...)."""

    @abc.abstractmethod
    def get_events(self, run_id: int, after_id: int = 0) -> list[dict[str, Any]]:
        """Event rows with id > ``after_id``, oldest first."""

    # -------------------------------------------------------------- sweeps
    @abc.abstractmethod
    def create_sweep(self, name: str, spec: dict[str, Any]) -> int:
        """Record a new sweep; returns its id (its runs carry it as ``sweep_id``, and group "sweep-<id>")."""

    @abc.abstractmethod
    def get_sweep(self, sweep_id: int) -> SweepRecord:
        """The sweep; raises ``LabError`` naming the id for an unknown one."""

    @abc.abstractmethod
    def list_sweeps(self) -> list[SweepRecord]:
        """Every sweep, newest first."""

    @abc.abstractmethod
    def update_sweep(self, sweep_id: int, **fields: Any) -> None:
        """Set columns of a sweep (stop_requested, finished_at)."""

    @abc.abstractmethod
    def claim_trial(self, sweep_id: int, trials: int, in_flight: int) -> int | None:
        """Atomically add the sweep's next trial row (no params yet) when it has fewer than ``trials``
        trials, fewer than ``in_flight`` open ones and no stop request; its number, or None. Two
        processes advancing one sweep at once never add the same trial or exceed the bounds."""

    @abc.abstractmethod
    def set_trial(self, sweep_id: int, trial: int, **fields: Any) -> None:
        """Set fields of a trial (params, optuna_trial_number)."""

    @abc.abstractmethod
    def end_trial(self, sweep_id: int, trial: int, outcome: TrialOutcome, value: float | None) -> bool:
        """Record a trial's outcome once: True for the one caller that ended it (it then tells the search)."""

    @abc.abstractmethod
    def list_trials(self, sweep_id: int) -> list[TrialRecord]:
        """The sweep's trials, in order."""

    # ------------------------------------------------------- share links
    @abc.abstractmethod
    def revoke_share(self, token_id: str) -> bool:
        """Revoke the share link ``token_id``; False when it was revoked already."""

    @abc.abstractmethod
    def share_revoked(self, token_id: str) -> bool:
        """Whether the share link ``token_id`` was revoked."""

    # -------------------------------------------------------- conveniences
    def request_stop(self, run_id: int) -> None:
        self.update_run(run_id, stop_requested=True)

    @abc.abstractmethod
    def heartbeat(self, run_id: int, owner_pid: int) -> bool:
        """Record a sign of life of the process ``owner_pid`` holding the run; False (nothing written)
        when the run is no longer held by it."""

    def epoch_history(self, run_id: int) -> list[dict[str, Any]]:
        """One dict per recorded epoch: {"epoch": n, "loss": ..., "val_loss": ..., ...}."""
        history: dict[int, dict[str, Any]] = {}
        for row in self.get_metrics(run_id, kind="epoch"):
            history.setdefault(row["epoch"], {"epoch": row["epoch"]})[row["name"]] = row["value"]
        return [history[epoch] for epoch in sorted(history)]

    def epoch_histories(self, run_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """``epoch_history`` of many runs read in one query: {run_id: [{"epoch": n, name: value, ...,
        "_wall_time": time the epoch's last row was written}, ...]} (every id present, [] when none)."""
        histories: dict[int, dict[int, dict[str, Any]]] = {int(run_id): {} for run_id in run_ids}
        if not histories:
            return {}
        for row in self.get_metrics(list(histories), kind="epoch"):
            entry = histories[row["run_id"]].setdefault(row["epoch"], {"epoch": row["epoch"]})
            entry[row["name"]] = row["value"]
            entry["_wall_time"] = max(entry.get("_wall_time", row["wall_time"]), row["wall_time"])
        return {run_id: [rows[epoch] for epoch in sorted(rows)] for run_id, rows in histories.items()}


__all__ = ["METRIC_KINDS", "MetricRow", "PREDICTION_SPLITS", "RunStore"]
