"""The run store: runs, metrics, predictions and events, behind one small interface.

``RunStore`` (engine/store/base.py) is the interface the rest of the lab
calls; ``SqlRunStore`` (engine/store/sql.py) implements it with SQLAlchemy Core
over SQLite in WAL mode by default (``runs/lab.db``) or any SQLAlchemy URL
through ``CONV3D_LAB_DB`` (Postgres in a hosted lab). Runs come back as frozen
``engine.runs.RunRecord``s. Opening a store migrates an older database to the
current schema version (engine/store/migrations.py).
"""

from __future__ import annotations

from engine import paths
from engine.store.base import RunStore
from engine.store.sql import SqlRunStore


def open_store(url: str | None = None) -> RunStore:
    """The store at ``url`` (default: ``$CONV3D_LAB_DB`` or ``<workspace>/lab.db``)."""
    return SqlRunStore(url or paths.database_url())


__all__ = ["RunStore", "SqlRunStore", "open_store"]
