"""Backups of a SQLite run database, hourly and after every run's end, with SQLite's online backup API.

``open_store`` calls ``maybe_backup`` for a SQLite file: one directory listing
of ``backups/`` next to the database (``<lab home>/backups/`` by default)
decides, so opening the store stays cheap. When the newest backup is older
than BACKUP_INTERVAL_S (or there is none), the database is copied with
``sqlite3.Connection.backup`` (a consistent snapshot that includes the WAL,
taken while other processes keep writing) into a temporary file, checked with
``PRAGMA quick_check``, and renamed to ``lab-YYYYmmdd-HHMMSS.db``; only the
newest KEEP_BACKUPS are kept. A copy that fails the check is dropped, so a
damaged database never pushes the good backups out.

Restoring is manual and named in the error a damaged database gives: stop the
lab, move ``lab.db`` (and ``lab.db-wal``, ``lab.db-shm``) aside and copy a
backup to ``lab.db``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from engine import paths

log = logging.getLogger(__name__)

BACKUP_INTERVAL_S = 3600
KEEP_BACKUPS = 5
BACKUP_DIR_NAME = "backups"
_STAMP = "%Y%m%d-%H%M%S"


def backups_dir(database: Path) -> Path:
    return Path(database).parent / BACKUP_DIR_NAME


def list_backups(database: Path) -> list[Path]:
    """The backups of ``database``, oldest first (the stamp in the name sorts by time)."""
    folder = backups_dir(database)
    stem = Path(database).stem
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.startswith(f"{stem}-")
                       and entry.name.endswith(".db"))
    except OSError:
        return []
    return [folder / name for name in names]


def newest_backup(database: Path) -> Path | None:
    backups = list_backups(database)
    return backups[-1] if backups else None


def backup_time(backup: Path) -> datetime | None:
    """When a backup was taken, from its name."""
    try:
        return datetime.strptime("-".join(backup.stem.rsplit("-", 2)[-2:]), _STAMP)
    except (ValueError, IndexError):
        return None


def maybe_backup(database: Path, *, now: float | None = None, interval_s: float = BACKUP_INTERVAL_S) -> Path | None:
    """Back ``database`` up when the newest backup is older than ``interval_s`` (0: now; a run that has
    just ended is backed up at once, engine/store/journal.py); the new backup or None.

    Never raises: a backup that cannot be written is logged and tried again on a later open.
    """
    now = time.time() if now is None else now
    newest = newest_backup(database)
    if newest is not None and interval_s > 0:
        taken = backup_time(newest)
        if taken is not None and now - taken.timestamp() < interval_s:
            return None
    try:
        return backup(database, now=now)
    except (OSError, sqlite3.Error) as e:
        log.warning("could not back up %s: %s", database, e)
        return None


def backup(database: Path, *, now: float | None = None) -> Path | None:
    """Copy ``database`` into ``backups/`` (temp file, check, rename) and prune; the backup, or None when
    the copy failed its integrity check."""
    database = Path(database)
    folder = backups_dir(database)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(time.time() if now is None else now).strftime(_STAMP)
    final = folder / f"{database.stem}-{stamp}.db"
    partial = folder / f".{final.name}.{os.getpid()}.partial"
    try:
        source = sqlite3.connect(database, timeout=30)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                healthy = target.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                target.close()
        finally:
            source.close()
        if not healthy:
            log.warning("not keeping a backup of %s: the copy fails PRAGMA quick_check", database)
            return None
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    for old in list_backups(database)[:-KEEP_BACKUPS]:
        old.unlink(missing_ok=True)
    return final


def runs_in(backup: Path) -> int | None:
    """How many runs a backup holds (read-only), or None when it cannot be read."""
    try:
        connection = sqlite3.connect(f"file:{Path(backup)}?mode=ro", uri=True, timeout=5)
        try:
            return int(connection.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return None


def restore_advice(database: Path) -> str:
    """What to do about a damaged ``database``: restore the newest backup (its time, and the runs it holds
    against the run folders present), then recover the rest from their folders; or start afresh."""
    database = Path(database)
    aside = f"move {database.name} (and any {database.name}-wal and {database.name}-shm) aside"
    folders = len(paths.run_folders())
    rebuild = "`python -m engine doctor --store --rebuild` does this and recovers the runs from their folders"
    newest = newest_backup(database)
    if newest is None:
        return (f"there is no backup in {backups_dir(database)}; {folders} run folder(s) are present: "
                f"{rebuild} (or stop the lab and {aside} to start with an empty database)")
    taken = backup_time(newest)
    when = f"taken {taken:%Y-%m-%d %H:%M:%S}" if taken else "of unknown time"
    held = runs_in(newest)
    holds = f"holding {held} run(s)" if held is not None else "unreadable"
    return (f"restore the newest backup, {newest} ({when}, {holds}; {folders} run folder(s) are present): "
            f"{rebuild} the backup lacks; by hand, stop the lab, {aside}, and copy the backup to {database}")


__all__ = ["BACKUP_INTERVAL_S", "KEEP_BACKUPS", "backup", "backups_dir", "list_backups", "maybe_backup",
           "newest_backup", "restore_advice", "runs_in"]
