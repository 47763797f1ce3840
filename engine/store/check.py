"""``python -m engine doctor --store``: is the run database sound, and does every run still have its folder?

For a SQLite file the check opens the file with sqlite3 itself (not the store,
which refuses a damaged file) and runs ``PRAGMA integrity_check``; then, if
the store opens, it lists runs that recorded epochs but whose folder
(checkpoints, splits, worker log) is gone, and the backups there are.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import paths
from engine.weights import checkpoints
from engine.errors import StoreError
from engine.runs import RunStatus
from engine.store import backup, failures, journal, sql
from engine.store.sql import SqlRunStore

# integrity_check stops after this many problems.
_MAX_INTEGRITY_ROWS = 20


@dataclass
class StoreCheck:
    database: str
    # SQLite only: ["ok"], or integrity_check's problems; None for another database.
    integrity: list[str] | None = None
    # The StoreError sentence when the store cannot be opened, else None.
    error: str | None = None
    runs: int = 0
    missing_folders: list[int] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    advice: str | None = None

    @property
    def healthy(self) -> bool:
        return self.error is None and self.integrity in (None, ["ok"]) and not self.missing_folders

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def _integrity(database) -> list[str]:
    if not database.exists():
        return ["ok"]  # nothing written yet: the store creates it
    try:
        connection = sqlite3.connect(database, timeout=30)
        try:
            rows = connection.execute(f"PRAGMA integrity_check({_MAX_INTEGRITY_ROWS})").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as e:
        return [str(e)]
    return [str(row[0]) for row in rows]


def check_store(url: str | None = None) -> StoreCheck:
    """Check the store at ``url`` (default: the lab's); raises ``StoreError`` only for a database that is not
    a SQLite file and cannot be reached (there is nothing more to report then)."""
    url = url or paths.database_url()
    database = failures.sqlite_path(url)
    result = StoreCheck(database=str(database) if database else failures.shown_url(url))
    if database is not None:
        result.integrity = _integrity(database)
        result.backups = [str(path) for path in backup.list_backups(database)]
        if result.integrity != ["ok"]:
            result.advice = backup.restore_advice(database)
    try:
        store = SqlRunStore(url)
        runs = store.list_runs()
    except StoreError as e:
        if database is None:
            raise
        result.error = str(e)
        return result
    result.runs = len(runs)
    # A run that recorded epochs kept its checkpoints and splits in its folder.
    result.missing_folders = sorted(
        run.id for run in runs if run.epochs_done > 0 and not paths.run_dir(run.id, create=False).is_dir()
    )
    return result


@dataclass
class Rebuild:
    database: str
    # Where the damaged or unreadable database was moved, and the backup copied in its place.
    moved_aside: str | None = None
    restored_backup: str | None = None
    # Runs added from their folders (the database lacked them), and runs whose folder held a later state.
    recovered: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rebuild(url: str | None = None) -> Rebuild:
    """Recover the run store from its backups and the run folders (``doctor --store --rebuild``).

    A SQLite database that is damaged (or missing while backups exist) is moved aside and the newest
    backup copied in its place. Then every run folder whose ``run.json`` (engine/store/journal.py)
    describes a run the database lacks, or a later state of it (more epochs, or an outcome where the
    database still has it queued or running), is recorded from its folder with its epoch and test
    metrics. A run the folder shows queued or running had its worker die with the database: it is
    recorded ``interrupted``, resumable from its last checkpoint. Run it with the lab stopped.
    """
    url = url or paths.database_url()
    database = failures.sqlite_path(url)
    result = Rebuild(database=str(database) if database else failures.shown_url(url))
    if database is not None:
        _restore_newest_backup(database, result)
    store = SqlRunStore(url)
    known = {run.id: run for run in store.list_runs()}
    for run_id, folder in sorted(paths.run_folders().items()):
        found = journal.read(folder)
        if found is None or found.run_id != run_id:
            continue
        fields = dict(found.fields)
        status = RunStatus(fields["status"])
        if status.is_active:
            fields["status"] = RunStatus.INTERRUPTED.value
            fields["error"] = (f"Interrupted: recovered from its run folder after the database was lost; resume "
                               f"continues after epoch {checkpoints.resume_epoch(folder, fields.get('epochs_done'))}.")
        current = known.get(run_id)
        if current is not None and not _folder_is_newer(current, fields):
            continue
        store.restore_run(fields, found.metrics)
        store.log_event(run_id, f"recovered from its run folder {folder.name} by doctor --store --rebuild", "warning")
        (result.updated if current is not None else result.recovered).append(run_id)
    result.runs = len(store.list_runs())
    return result


def _folder_is_newer(current, fields: dict[str, Any]) -> bool:
    epochs = int(fields.get("epochs_done") or 0)
    ended = not RunStatus(fields["status"]).is_active and fields.get("finished_at") is not None
    return epochs > current.epochs_done or (ended and current.status.is_active and epochs >= current.epochs_done)


def _restore_newest_backup(database: Path, result: Rebuild) -> None:
    """Move a damaged (or vanished) database aside and copy the newest backup in its place."""
    sound = database.exists() and _integrity(database) == ["ok"]
    newest = backup.newest_backup(database)
    if sound or (not database.exists() and newest is None):
        return
    if database.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = database.with_name(f"{database.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            path = database.with_name(database.name + suffix)
            if path.exists():
                os.replace(path, aside.with_name(aside.name + suffix))
        result.moved_aside = str(aside)
    else:
        for suffix in ("-wal", "-shm"):  # what is left of a deleted database belongs to no database
            database.with_name(database.name + suffix).unlink(missing_ok=True)
    sql.forget_engine(f"sqlite:///{database}")
    if newest is not None:
        shutil.copy2(newest, database)
        result.restored_backup = str(newest)


def rebuild_lines(result: Rebuild) -> list[str]:
    lines = [f"database: {result.database}"]
    if result.moved_aside:
        lines.append(f"the damaged database was moved to {result.moved_aside}")
    if result.restored_backup:
        lines.append(f"restored the newest backup: {result.restored_backup}")
    lines.append(f"recovered from their run folders: {', '.join(map(str, result.recovered)) or 'none needed'}")
    if result.updated:
        lines.append(f"brought up to date from their run folders: {', '.join(map(str, result.updated))}")
    lines.append(f"runs: {result.runs}")
    if result.recovered or result.updated:
        lines.append("per-sample test predictions are not kept in run folders: "
                     "`python -m engine evaluate RUN` recomputes them from best.keras")
    return lines


def report_lines(result: StoreCheck) -> list[str]:
    """The text report of ``doctor --store``."""
    lines = [f"database: {result.database}"]
    if result.integrity is not None:
        lines.append("integrity: ok" if result.integrity == ["ok"] else
                     "integrity: DAMAGED: " + "; ".join(result.integrity))
    if result.error:
        lines.append(f"cannot open: {result.error}")
    else:
        lines.append(f"runs: {result.runs}")
        if result.missing_folders:
            lines.append(
                f"folders missing for {len(result.missing_folders)} run(s) with recorded epochs: "
                f"{', '.join(map(str, result.missing_folders))} (their checkpoints, splits and logs are gone: "
                "they cannot be resumed or inspected per sample; `python -m engine runs` still lists them)"
            )
        else:
            lines.append("run folders: every run with recorded epochs has its folder")
    if result.integrity is not None:
        newest = f", newest {result.backups[-1]}" if result.backups else ""
        held = backup.runs_in(Path(result.backups[-1])) if result.backups else None
        lines.append(f"backups: {len(result.backups)}{newest}" + (f" ({held} runs)" if held is not None else "")
                     + ("" if result.backups else " (one is taken within an hour of using the lab, and when a run ends)"))
    if result.advice:
        lines.append(f"advice: {result.advice}.")
    lines.append("healthy" if result.healthy else "problems found")
    return lines


__all__ = ["Rebuild", "StoreCheck", "check_store", "rebuild", "rebuild_lines", "report_lines"]
