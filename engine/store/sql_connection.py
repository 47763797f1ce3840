"""The SQL store's connection: one SQLAlchemy engine per URL per process, its schema brought up to date when
it opens, short write and read transactions, and the advisory lock keys that serialise writers on Postgres.

Every write is one short transaction; on SQLite it begins ``IMMEDIATE`` so two
processes never both hold a read lock they then try to upgrade (the usual
cause of "database is locked"). Opening a database brings its schema to the
current version (engine/store/migrations.py). The parts of ``SqlRunStore``
(engine/store/sql.py) build on ``SqlConnection``'s ``_write`` and ``_read``.
"""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from engine.store import backup, failures, migrations

# Seconds a SQLite connection waits for another writer before giving up.
_SQLITE_BUSY_TIMEOUT_S = 60
# Postgres advisory locks (transaction-scoped) that serialise what SQLite's BEGIN IMMEDIATE serialises: the
# schema's creation and migration, queue claims, sweep trial claims, admissions. (Optuna's table creation
# holds 7276, engine/sweeps/study.py.)
SCHEMA_LOCK = 7272
CLAIM_LOCK = 7273
TRIAL_LOCK = 7274
ADMISSION_LOCK = 7275


def _create_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, future=True)

    engine = sa.create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling
        # would begin lazily and defeat BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _upgrade_schema(engine: sa.Engine) -> None:
    """Create or migrate the tables in one write transaction (BEGIN IMMEDIATE on SQLite).

    Processes that open a new database at the same moment (ten ``launch``
    commands on a fresh lab) then wait for each other; with a deferred
    transaction each would read first and fail with "database is locked" when
    it tries to write.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                # Serialise first-time creation and migration between processes.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            migrations.upgrade(conn)


_ENGINES: dict[str, sa.Engine] = {}


def _open_engine(url: str) -> sa.Engine:
    """A new engine with its schema upgraded; a ``StoreError`` sentence when the database is unusable."""
    engine = None
    try:
        engine = _create_engine(url)
        _upgrade_schema(engine)
    except failures.OPEN_ERRORS as e:
        if engine is not None:
            engine.dispose()
        raise failures.store_error(url, e) from e
    return engine


def forget_engine(url: str) -> None:
    """Close this process's engine of ``url`` (its database file is being replaced); the next open makes one."""
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


class SqlConnection:
    """The store's URL, its process-wide engine, and the transactions every part of the store runs in."""

    def __init__(self, url: str):
        self.url = url
        # One engine (connection pool) per URL per process.
        if url not in _ENGINES:
            _ENGINES[url] = _open_engine(url)
        self.engine = _ENGINES[url]
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        database = failures.sqlite_path(url)
        if database is not None:
            backup.maybe_backup(database)  # a listing of backups/ decides; a copy at most once an hour

    # ------------------------------------------------------------ plumbing
    @contextmanager
    def _write(self):
        """A short write transaction (BEGIN IMMEDIATE on SQLite)."""
        with self._unusable_as_store_error(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self):
        with self._unusable_as_store_error(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _unusable_as_store_error(self):
        """A database that became unusable after opening (damaged, server gone) is a ``StoreError`` sentence."""
        try:
            yield
        except sa.exc.DBAPIError as e:
            if failures.is_unusable(e):
                raise failures.store_error(self.url, e) from e
            raise


__all__ = ["ADMISSION_LOCK", "CLAIM_LOCK", "SCHEMA_LOCK", "TRIAL_LOCK", "SqlConnection", "forget_engine"]
