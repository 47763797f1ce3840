"""One sentence for a database that cannot be opened, read or written (``StoreError``).

SQLAlchemy and its drivers report these as exceptions with a page of
traceback; the sentence names the URL (its password hidden) or the SQLite
file and says what to do. For a damaged SQLite file that is where the newest
backup is and how to restore it (engine/store/backup.py).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from engine.errors import StoreError
from engine.store import backup

# SQLite's words for a file that is not (or no longer) a readable database.
_DAMAGED = ("file is not a database", "malformed", "disk image", "corrupt")


def shown_url(url: str) -> str:
    """The URL as the sentence shows it: its password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL has no password to hide worth the risk: show it as typed
        return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _reason(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy wraps it in a longer message)."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    text = lines[0] if lines else type(original).__name__
    return text.removeprefix("(sqlite3.DatabaseError) ").rstrip(".")


def store_error(url: str, exc: BaseException) -> StoreError:
    """The ``StoreError`` for ``exc`` met while opening or using the database at ``url``."""
    shown, reason = shown_url(url), _reason(exc)
    if isinstance(exc, (sa.exc.NoSuchModuleError, sa.exc.ArgumentError)):
        return StoreError(
            f"The database URL {shown!r} cannot be used ({reason}); set CONV3D_LAB_DB to a SQLAlchemy URL "
            "such as postgresql+psycopg2://user:password@host/lab, or unset it to use the workspace's lab.db."
        )
    if isinstance(exc, ImportError):
        return StoreError(
            f"The database URL {shown!r} needs the Python package {exc.name or reason!r}, which is not installed; "
            "install it, or unset CONV3D_LAB_DB to use the workspace's lab.db."
        )
    path = sqlite_path(url)
    if path is None:
        return StoreError(
            f"Cannot use the database at {shown} ({reason}); check that the server is running and reachable "
            "and that CONV3D_LAB_DB names it correctly, or unset CONV3D_LAB_DB to use the workspace's lab.db."
        )
    if any(word in reason.lower() for word in _DAMAGED):
        return StoreError(f"The run database {path} is damaged ({reason}); {backup.restore_advice(path)}.")
    if "locked" in reason.lower():
        return StoreError(
            f"The run database {path} stayed locked by another process ({reason}); try again, and if it "
            "persists, look for a stuck lab process (`python -m engine runs` lists the running ones)."
        )
    return StoreError(
        f"Cannot use the SQLite database {path} ({reason}); check that its folder exists and that you "
        "may write to it, or point CONV3D_LAB_HOME at another workspace."
    )


# The errors that mean the database itself is unusable (a failed constraint or a bad statement is a bug
# and keeps its traceback).
OPEN_ERRORS = (sa.exc.SQLAlchemyError, ImportError)
USE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError)


def is_unusable(exc: BaseException) -> bool:
    """A DBAPI error at read or write time that means the database is unusable (not a bug of ours)."""
    if isinstance(exc, USE_ERRORS):
        return True
    # pysqlite's DatabaseError itself (not a subclass) is "file is not a database" / "malformed".
    return type(exc) is sa.exc.DatabaseError
