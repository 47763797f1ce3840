"""``python -m engine doctor --store``: is the run database sound, and does every run still have its folder?

For a SQLite file the check opens the file with sqlite3 itself (not the store,
which refuses a damaged file) and runs ``PRAGMA integrity_check``; then, if
the store opens, it lists runs that recorded epochs but whose folder
(checkpoints, splits, worker log) is gone, and the backups there are.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import paths
from engine.errors import StoreError
from engine.store import backup, failures
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
        lines.append(f"backups: {len(result.backups)}" + (f", newest {result.backups[-1]}" if result.backups else
                                                           " (one is taken within an hour of using the lab)"))
    if result.advice:
        lines.append(f"advice: {result.advice}.")
    lines.append("healthy" if result.healthy else "problems found")
    return lines


__all__ = ["StoreCheck", "check_store", "report_lines"]
