"""The SQLAlchemy implementation of the run store: SQLite in WAL mode by default, Postgres by URL.

``SqlRunStore`` is composed of one part per concern, each a module beside this one:

- ``sql_connection``: the engine per URL, schema upgrade on open, write and read transactions, lock keys;
- ``sql_runs``: run records, queueing under an admission check, updates, transitions, restore, delete;
- ``sql_queue``: claims of queued runs, heartbeats, the stop flag;
- ``sql_sweeps``: sweeps and their trials;
- ``sql_results``: metrics and predictions;
- ``sql_events``: a run's events, and revoked share links.

Every write is one short transaction; on SQLite it begins ``IMMEDIATE`` so two
processes never both hold a read lock they then try to upgrade (the usual
cause of "database is locked"). Reads of live curves are incremental: callers
pass the last row id they have seen. Opening a database brings its schema to
the current version (engine/store/migrations.py).
"""

from __future__ import annotations

from engine.store.base import RunStore
from engine.store.sql_connection import _ENGINES, forget_engine
from engine.store.sql_events import SqlEvents
from engine.store.sql_queue import SqlQueue
from engine.store.sql_results import SqlResults
from engine.store.sql_runs import SqlRuns
from engine.store.sql_sweeps import SqlSweeps


class SqlRunStore(SqlRuns, SqlQueue, SqlSweeps, SqlResults, SqlEvents, RunStore):
    """The run store over SQLAlchemy Core: ``SqlRunStore(url)``; one engine per URL per process."""


__all__ = ["SqlRunStore", "_ENGINES", "forget_engine"]
