"""A run's own copy of what the store holds about it, in its folder, so a lost database loses no run.

When a run is claimed, when its checkpoints are written (engine/training/callbacks.py) and when it
ends, its worker (or ``python -m engine train``) writes into ``<lab home>/run-<id>/``:

- ``run.json``: the run record (its whole config, status, owner, group, times, epochs, best and test
  metrics, class names, split sizes, error sentence), JOURNAL_VERSION marks the layout;
- ``metrics.jsonl``: its epoch and test metric rows, one JSON object a line (batch rows, throttled
  samples of the training loss, are left out: the epoch curves are what the Runs and Compare pages
  and the doctor read).

Both are written to a temporary file and renamed, so a reader never sees half a file. The folder
already holds what the worker wrote while training: ``splits.json`` and the checkpoints.
``python -m engine doctor --store --rebuild`` (engine/store/check.py) reads them back with ``read``.
Per-sample predictions are not copied (they are large); ``python -m engine evaluate RUN``
recomputes the test predictions from ``best.keras``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import paths
from engine.runs import RunRecord
from engine.store import artefacts, backup, failures
from engine.store.base import RunStore

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
JOURNAL_VERSION = 1
# The metric kinds copied to the folder (engine/store/base.py METRIC_KINDS less "batch").
JOURNAL_KINDS = ("epoch", "test")
# The record fields that describe a run's outcome; the process fields (pid, host, slot, heartbeat,
# stop flag) mean nothing once the database that held them is gone.
_RECORD_FIELDS = (
    "id", "name", "status", "created_at", "queued_at", "started_at", "finished_at", "epochs_total",
    "epochs_done", "dataset_fingerprint", "num_classes", "class_names", "split_sizes", "monitor", "best_value",
    "best_epoch", "test_metrics", "group", "trial", "error", "tags", "notes", "archived", "num_params", "owner",
    "parent_run", "sweep_id",
)


@dataclass
class FolderRun:
    """What a run folder holds of its run: the record's fields (``config`` as a dict) and its metric rows."""

    run_id: int
    fields: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)


def save(store: RunStore, run_id: int) -> None:
    """Write the run's ``run.json`` and ``metrics.jsonl`` into its folder; never raises (a folder that
    cannot be written is logged: the store still holds the run)."""
    try:
        folder = paths.run_dir(run_id, create=False)
        if not folder.is_dir():
            return  # deleted (while it trained, say): not brought back half-empty; doctor --store reports it
        run = store.get_run(run_id)
        rows = [
            {key: row[key] for key in ("kind", "epoch", "step", "name", "value", "wall_time")}
            for kind in JOURNAL_KINDS
            for row in store.get_metrics(run_id, kind=kind)
        ]
        _write_atomic(folder / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in rows))
        _write_atomic(folder / RUN_FILE, json.dumps(record_fields(run), indent=1, sort_keys=True))
    except Exception as e:  # the journal is a second copy: its failure must not fail the run
        log.warning("could not write the folder copy of run %s: %s", run_id, e)
    publish(store, run_id, record_failure=False)


def publish(store: RunStore, run_id: int, *, record_failure: bool = True) -> None:
    """With ``CONV3D_LAB_ARTIFACTS`` set, put the run folder's changed files on the shared root
    (engine/store/artefacts.py); never raises: a failure is logged, and with ``record_failure`` also
    written to the run's events, where the dashboard shows it."""
    try:
        artefacts.publish_run(run_id)
    except Exception as e:
        log.warning("could not publish the files of run %s: %s", run_id, e)
        if record_failure:
            try:
                store.log_event(run_id, f"its files were not published: {e}", "warning")
            except Exception:
                log.exception("recording the failed publish of run %s failed", run_id)


def run_ended(store: RunStore, run_id: int) -> None:
    """A run has its outcome: its folder copy is written, and a SQLite database is backed up now (not only
    hourly), so the newest backup holds the run. Never raises."""
    save(store, run_id)
    publish(store, run_id)  # a second try that records its failure: the run's last files must reach the root
    database = failures.sqlite_path(store.url)
    if database is not None:
        backup.maybe_backup(database, interval_s=0)


def record_fields(run: RunRecord) -> dict[str, Any]:
    fields = {name: getattr(run, name) for name in _RECORD_FIELDS}
    fields["status"] = run.status.value
    fields["config"] = run.config.to_dict()
    fields["class_names"] = list(run.class_names)
    fields["tags"] = list(run.tags)
    fields["journal_version"] = JOURNAL_VERSION
    return fields


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read(folder: Path) -> FolderRun | None:
    """The run a folder's ``run.json`` and ``metrics.jsonl`` describe; None without a readable run.json."""
    try:
        fields = json.loads((Path(folder) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(fields, dict) or "config" not in fields or "id" not in fields:
        return None
    fields.pop("journal_version", None)
    metrics = []
    try:
        with open(Path(folder) / METRICS_FILE, encoding="utf-8") as handle:
            for line in handle:
                try:
                    metrics.append(json.loads(line))
                except ValueError:
                    break  # a torn last line: keep what came before it
    except OSError:
        pass
    return FolderRun(run_id=int(fields["id"]), fields=fields, metrics=metrics)


__all__ = ["FolderRun", "JOURNAL_KINDS", "METRICS_FILE", "RUN_FILE", "read", "record_fields", "run_ended", "save"]
