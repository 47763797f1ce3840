"""The SQLAlchemy implementation of the run store: SQLite in WAL mode by default, Postgres by URL.

Every write is one short transaction; on SQLite it begins ``IMMEDIATE`` so two
processes never both hold a read lock they then try to upgrade (the usual
cause of "database is locked"). Reads of live curves are incremental: callers
pass the last row id they have seen. Opening a database brings its schema to
the current version (engine/store/migrations.py).
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sqlalchemy as sa

from engine.config import RunConfig
from engine.errors import DuplicateMetrics, LabError, RunNotFound
from engine.runs import ACTIVE_STATUSES, RunRecord, RunStatus, SweepRecord, TrialOutcome, TrialRecord
from engine.store import backup, failures, migrations, schema
from engine.store.base import Admission, AdmissionView, MetricRow, RunStore

_JSON_COLUMNS = ("config", "class_names", "split_sizes", "test_metrics", "tags")
# Seconds a SQLite connection waits for another writer before giving up.
_SQLITE_BUSY_TIMEOUT_S = 60
# SQLite integers are 8 bytes: a larger id names no run (and would raise OverflowError in the driver).
_MAX_ID = 2**63 - 1
# The Postgres advisory lock that serialises admissions (claims use 7273, sweep trials 7274).
_ADMISSION_LOCK = 7275


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
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7272)"))
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


class _AdmissionView(AdmissionView):
    """The admission reads, on the connection of the transaction that will insert or requeue."""

    def __init__(self, conn):
        self._conn = conn

    def active_owners(self) -> list[str | None]:
        active = [status.value for status in ACTIVE_STATUSES]
        return [row.owner for row in self._conn.execute(
            sa.select(schema.runs.c.owner).where(schema.runs.c.status.in_(active)))]

    def owner_runs_since(self, owner: str, since: float) -> list[tuple[float, float | None, float | None]]:
        runs = schema.runs.c
        query = sa.select(runs.created_at, runs.started_at, runs.finished_at).where(
            runs.owner == owner,
            sa.or_(runs.created_at >= since, runs.finished_at.is_(None), runs.finished_at >= since),
        )
        return [(row.created_at, row.started_at, row.finished_at) for row in self._conn.execute(query)]


class SqlRunStore(RunStore):
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

    @staticmethod
    def _record(row) -> RunRecord:
        run = dict(row._mapping)
        for column in _JSON_COLUMNS:
            run[column] = json.loads(run[column]) if run.get(column) else None
        return RunRecord(
            id=int(run["id"]),
            name=run["name"],
            status=RunStatus(run["status"]),
            config=RunConfig.from_dict(run["config"]),
            created_at=run["created_at"],
            queued_at=run["queued_at"],
            epochs_total=int(run["epochs_total"]),
            epochs_done=int(run["epochs_done"] or 0),
            dataset_fingerprint=run["dataset_fingerprint"],
            num_classes=run["num_classes"],
            class_names=tuple(str(name) for name in run["class_names"] or ()),
            split_sizes=dict(run["split_sizes"] or {}),
            started_at=run["started_at"],
            finished_at=run["finished_at"],
            pid=run["pid"],
            host=run["host"],
            slot=run["slot"],
            heartbeat_at=run["heartbeat_at"],
            monitor=run["monitor"],
            best_value=run["best_value"],
            best_epoch=run["best_epoch"],
            test_metrics=dict(run["test_metrics"] or {}),
            stop_requested=bool(run["stop_requested"]),
            resume_from_epoch=run["resume_from_epoch"],
            group=run["group"],
            trial=run["trial"],
            error=run["error"],
            traceback=run["traceback"],
            tags=tuple(str(tag) for tag in run["tags"] or ()),
            notes=run["notes"] or "",
            archived=bool(run["archived"]),
            num_params=run["num_params"],
            owner=run["owner"],
            parent_run=run.get("parent_run"),
            sweep_id=run.get("sweep_id"),
        )

    # ---------------------------------------------------------------- runs
    def create_run(
        self, config: RunConfig, status: RunStatus = RunStatus.QUEUED, *, group: str | None = None,
        trial: int | None = None, owner: str | None = None, sweep_id: int | None = None,
    ) -> int:
        with self._write() as conn:
            return self._insert_run(conn, config, status, group, trial, owner, sweep_id)

    def create_runs(
        self, configs: Sequence[RunConfig], *, group: str | None = None, trial: int | None = None,
        owner: str | None = None, admit: Admission | None = None, sweep_id: int | None = None,
    ) -> list[int]:
        with self._write() as conn:
            if admit is not None:
                self._admission_lock(conn)
                admit(_AdmissionView(conn))
            return [self._insert_run(conn, config, RunStatus.QUEUED, group, trial, owner, sweep_id)
                    for config in configs]

    def requeue(self, run_id: int, *, from_statuses: Iterable[RunStatus], admit: Admission | None = None,
                **fields: Any) -> bool:
        fields = self._columns(fields)
        from_values = [RunStatus(status).value for status in from_statuses]
        with self._write() as conn:
            if admit is not None:
                self._admission_lock(conn)
                admit(_AdmissionView(conn))
            result = conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == int(run_id), schema.runs.c.status.in_(from_values))
                .values(status=RunStatus.QUEUED.value, **fields)
            )
        return result.rowcount == 1

    def restore_run(self, fields: dict[str, Any], metrics: Iterable[MetricRow]) -> None:
        config = RunConfig.from_dict(fields["config"])
        run_id = int(fields["id"])
        known = {column.name for column in schema.runs.columns}
        values = {key: value for key, value in fields.items() if key in known and key != "status"}
        values = self._columns(values)
        values.update(
            id=run_id, status=RunStatus(fields["status"]).value, config=config.to_json(),
            dataset=config.data.dataset, architecture=config.model.architecture, stop_requested=False,
            name=fields.get("name") or f"run-{run_id}", tags=values.get("tags") or "[]",
            notes=values.get("notes") or "", archived=bool(values.get("archived")),
        )
        rows = [
            {"run_id": run_id, "kind": row["kind"], "epoch": int(row["epoch"]), "step": row.get("step"),
             "name": row["name"], "value": row["value"], "wall_time": row.get("wall_time") or 0.0}
            for row in metrics
        ]
        with self._write() as conn:
            for table in (schema.metrics, schema.predictions, schema.events):
                conn.execute(table.delete().where(table.c.run_id == run_id))
            conn.execute(schema.runs.delete().where(schema.runs.c.id == run_id))
            conn.execute(schema.runs.insert().values(**values))
            if rows:
                conn.execute(schema.metrics.insert(), rows)
            if not self.is_sqlite:
                # An explicit id does not move the id sequence: the next launch would collide with it.
                conn.execute(sa.text(
                    "SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))"))

    def _admission_lock(self, conn) -> None:
        """Serialise the transactions that count active runs and then add one. SQLite's BEGIN IMMEDIATE
        already holds the one write lock from the first statement; on Postgres (READ COMMITTED: each
        statement sees what committed before it) a transaction-scoped advisory lock does the same, and is
        released by the commit or rollback."""
        if not self.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMISSION_LOCK})

    @staticmethod
    def _insert_run(conn, config: RunConfig, status: RunStatus, group: str | None, trial: int | None,
                    owner: str | None, sweep_id: int | None) -> int:
        now = time.time()
        result = conn.execute(
            schema.runs.insert().values(
                name=config.name or "",
                status=RunStatus(status).value,
                config=config.to_json(),
                dataset=config.data.dataset,
                architecture=config.model.architecture,
                created_at=now,
                queued_at=now if RunStatus(status) == RunStatus.QUEUED else None,
                epochs_total=int(config.training.epochs),
                epochs_done=0,
                monitor=config.training.monitor,
                stop_requested=False,
                tags="[]",
                notes="",
                archived=False,
                group=group,
                trial=trial,
                owner=owner,
                sweep_id=None if sweep_id is None else int(sweep_id),
            )
        )
        run_id = int(result.inserted_primary_key[0])
        if not config.name:
            name = f"run-{run_id}"
            conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(name=name))
        return run_id


    def get_run(self, run_id: int) -> RunRecord:
        if not 0 < int(run_id) <= _MAX_ID:
            raise RunNotFound(run_id)
        with self._read() as conn:
            row = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == int(run_id))).first()
        if row is None:
            raise RunNotFound(run_id)
        return self._record(row)

    def list_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
        archived: bool | None = None,
        group: str | None = None,
        sweep_id: int | None = None,
    ) -> list[RunRecord]:
        query = sa.select(schema.runs).order_by(schema.runs.c.id.desc())
        if sweep_id is not None:
            query = query.where(schema.runs.c.sweep_id == int(sweep_id))
        if archived is not None:
            query = query.where(schema.runs.c.archived == bool(archived))
        if group is not None:
            query = query.where(schema.runs.c.group == group)
        statuses = [RunStatus(status).value for status in statuses or ()]
        if statuses:
            query = query.where(schema.runs.c.status.in_(statuses))
        if ids is not None:
            query = query.where(schema.runs.c.id.in_([int(i) for i in ids if 0 < int(i) <= _MAX_ID]))
        if limit:
            query = query.limit(limit)
        with self._read() as conn:
            return [self._record(row) for row in conn.execute(query)]

    @staticmethod
    def _columns(fields: dict[str, Any]) -> dict[str, Any]:
        """Column values for an update: JSON columns encoded; the status only through ``transition``."""
        if "status" in fields:
            raise TypeError("a run's status changes only through transition()")
        for column in _JSON_COLUMNS:
            if column in fields and fields[column] is not None and not isinstance(fields[column], str):
                value = fields[column]
                fields[column] = value.to_json() if isinstance(value, RunConfig) else json.dumps(value, sort_keys=True)
        return fields

    def update_run(self, run_id: int, **fields: Any) -> None:
        fields = self._columns(fields)
        with self._write() as conn:
            result = conn.execute(schema.runs.update().where(schema.runs.c.id == int(run_id)).values(**fields))
        if result.rowcount == 0:
            raise RunNotFound(run_id)

    def transition(
        self,
        run_id: int,
        to_status: RunStatus,
        *,
        from_statuses: Iterable[RunStatus],
        owner_pid: int | None = None,
        **fields: Any,
    ) -> bool:
        fields = self._columns(fields)
        from_values = [RunStatus(status).value for status in from_statuses]
        conditions = [schema.runs.c.id == int(run_id), schema.runs.c.status.in_(from_values)]
        if owner_pid is not None:
            conditions.append(schema.runs.c.pid == int(owner_pid))
        with self._write() as conn:
            result = conn.execute(
                schema.runs.update().where(*conditions).values(status=RunStatus(to_status).value, **fields)
            )
        return result.rowcount == 1

    def claim_next_queued(self, slots: Sequence[str]) -> tuple[int, str] | None:
        """Atomically move the oldest queued run to ``running`` on a free slot.

        ``slots`` names every slot of this lab ("0", "1" for GPUs, or "cpu").
        Returns (run_id, slot) or None when no run waits or no slot is free.
        Two launchers calling this at once never get the same run, and never
        more running runs than slots.
        """
        with self._write() as conn:
            if not self.is_sqlite:
                # Serialise claimers on Postgres (SQLite's BEGIN IMMEDIATE already does).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7273)"))
            busy = {
                row.slot
                for row in conn.execute(
                    sa.select(schema.runs.c.slot).where(schema.runs.c.status == RunStatus.RUNNING.value)
                )
            }
            free = [slot for slot in slots if slot not in busy]
            if not free:
                return None
            row = conn.execute(
                sa.select(schema.runs.c.id)
                .where(schema.runs.c.status == RunStatus.QUEUED.value)
                .order_by(schema.runs.c.id)
                .limit(1)
            ).first()
            if row is None:
                return None
            now = time.time()
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == row.id, schema.runs.c.status == RunStatus.QUEUED.value)
                .values(
                    status=RunStatus.RUNNING.value,
                    slot=free[0],
                    host=socket.gethostname(),
                    heartbeat_at=now,
                    started_at=sa.func.coalesce(schema.runs.c.started_at, now),
                    finished_at=None,
                    pid=None,
                )
            )
            return int(row.id), free[0]

    def heartbeat(self, run_id: int, owner_pid: int) -> bool:
        with self._write() as conn:
            result = conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == int(run_id), schema.runs.c.pid == int(owner_pid))
                .values(heartbeat_at=time.time())
            )
        return result.rowcount == 1

    def stop_requested(self, run_id: int) -> bool:
        with self._read() as conn:
            value = conn.execute(
                sa.select(schema.runs.c.stop_requested).where(schema.runs.c.id == int(run_id))
            ).scalar()
        return bool(value)

    def delete_run(self, run_id: int) -> None:
        with self._write() as conn:
            for table in (schema.metrics, schema.predictions, schema.events):
                conn.execute(table.delete().where(table.c.run_id == int(run_id)))
            conn.execute(schema.runs.delete().where(schema.runs.c.id == int(run_id)))

    # --------------------------------------------------------- share links
    def revoke_share(self, token_id: str) -> bool:
        table = schema.share_revocations
        with self._write() as conn:
            if conn.execute(sa.select(table.c.token_id).where(table.c.token_id == str(token_id))).first():
                return False
            conn.execute(table.insert().values(token_id=str(token_id), revoked_at=time.time()))
            return True

    def share_revoked(self, token_id: str) -> bool:
        table = schema.share_revocations
        with self._read() as conn:
            return conn.execute(sa.select(table.c.token_id).where(table.c.token_id == str(token_id))).first() is not None

    # -------------------------------------------------------------- sweeps
    def create_sweep(self, name: str, spec: dict[str, Any]) -> int:
        with self._write() as conn:
            result = conn.execute(schema.sweeps.insert().values(
                name=name or "", spec=json.dumps(spec, sort_keys=True), created_at=time.time(), stop_requested=False,
            ))
            return int(result.inserted_primary_key[0])

    @staticmethod
    def _sweep(row) -> SweepRecord:
        return SweepRecord(
            id=int(row.id), name=row.name, spec=json.loads(row.spec), created_at=row.created_at,
            stop_requested=bool(row.stop_requested), finished_at=row.finished_at,
        )

    def get_sweep(self, sweep_id: int) -> SweepRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(schema.sweeps).where(schema.sweeps.c.id == int(sweep_id))).first()
        if row is None:
            raise LabError(f"There is no sweep {sweep_id}; `python -m engine sweep status` lists the sweeps.")
        return self._sweep(row)

    def list_sweeps(self) -> list[SweepRecord]:
        with self._read() as conn:
            return [self._sweep(row) for row in conn.execute(sa.select(schema.sweeps).order_by(schema.sweeps.c.id.desc()))]

    def update_sweep(self, sweep_id: int, **fields: Any) -> None:
        with self._write() as conn:
            conn.execute(schema.sweeps.update().where(schema.sweeps.c.id == int(sweep_id)).values(**fields))

    def claim_trial(self, sweep_id: int, trials: int, in_flight: int) -> int | None:
        table = schema.sweep_trials
        with self._write() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7274)"))
            stopped = conn.execute(
                sa.select(schema.sweeps.c.stop_requested).where(schema.sweeps.c.id == int(sweep_id))
            ).scalar()
            if stopped is None or stopped:
                return None
            count = conn.execute(sa.select(sa.func.count()).where(table.c.sweep_id == int(sweep_id))).scalar()
            open_count = conn.execute(
                sa.select(sa.func.count()).where(table.c.sweep_id == int(sweep_id), table.c.outcome.is_(None))
            ).scalar()
            if count >= trials or open_count >= in_flight:
                return None
            conn.execute(table.insert().values(sweep_id=int(sweep_id), trial=int(count), created_at=time.time()))
            return int(count)

    def set_trial(self, sweep_id: int, trial: int, **fields: Any) -> None:
        if "params" in fields and not isinstance(fields["params"], str):
            fields["params"] = json.dumps(fields["params"], sort_keys=True)
        table = schema.sweep_trials
        with self._write() as conn:
            conn.execute(table.update().where(table.c.sweep_id == int(sweep_id), table.c.trial == int(trial)).values(**fields))

    def end_trial(self, sweep_id: int, trial: int, outcome: TrialOutcome, value: float | None) -> bool:
        table = schema.sweep_trials
        with self._write() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.sweep_id == int(sweep_id), table.c.trial == int(trial), table.c.outcome.is_(None))
                .values(outcome=TrialOutcome(outcome).value, value=value, ended_at=time.time())
            )
        return result.rowcount == 1

    def list_trials(self, sweep_id: int) -> list[TrialRecord]:
        table = schema.sweep_trials
        with self._read() as conn:
            rows = conn.execute(sa.select(table).where(table.c.sweep_id == int(sweep_id)).order_by(table.c.trial))
            return [
                TrialRecord(
                    sweep_id=int(row.sweep_id), trial=int(row.trial),
                    params=json.loads(row.params) if row.params else None, created_at=row.created_at,
                    optuna_trial_number=row.optuna_trial_number, outcome=TrialOutcome(row.outcome) if row.outcome else None,
                    value=row.value, ended_at=row.ended_at,
                )
                for row in rows
            ]

    # ------------------------------------------------------------- metrics
    def log_metrics(self, run_id: int, rows: Iterable[MetricRow]) -> None:
        now = time.time()
        values = [
            {
                "run_id": int(run_id),
                "kind": row.get("kind", "epoch"),
                "epoch": int(row["epoch"]),
                "step": row.get("step"),
                "name": row["name"],
                "value": None if row["value"] is None else float(row["value"]),
                "wall_time": row.get("wall_time", now),
            }
            for row in rows
        ]
        if not values:
            return
        try:
            with self._write() as conn:
                conn.execute(schema.metrics.insert(), values)
        except sa.exc.IntegrityError as e:
            epochs = sorted({row["epoch"] for row in values})
            raise DuplicateMetrics(
                f"Run {run_id} already has metrics of epoch {', '.join(map(str, epochs))}; another process is "
                "recording this run, so these rows were refused."
            ) from e

    def get_metrics(
        self, run_ids: int | Sequence[int], after_id: int = 0, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Metric rows with id > after_id, oldest first (for incremental live reads)."""
        ids = [int(run_ids)] if isinstance(run_ids, (int, np.integer)) else [int(i) for i in run_ids]
        query = (
            sa.select(schema.metrics)
            .where(schema.metrics.c.run_id.in_(ids), schema.metrics.c.id > int(after_id))
            .order_by(schema.metrics.c.id)
        )
        if kind:
            query = query.where(schema.metrics.c.kind == kind)
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def epoch_histories(self, run_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """RunStore.epoch_histories in one lean query (five columns, plain tuples): 20 runs of 100 epochs
        are 18,000 rows, and building a dict per row would cost more than the query."""
        histories: dict[int, dict[int, dict[str, Any]]] = {int(run_id): {} for run_id in run_ids}
        if not histories:
            return {}
        metrics = schema.metrics
        query = (
            sa.select(metrics.c.run_id, metrics.c.epoch, metrics.c.name, metrics.c.value, metrics.c.wall_time)
            .where(metrics.c.run_id.in_(list(histories)), metrics.c.kind == "epoch")
            .order_by(metrics.c.id)
        )
        with self._read() as conn:
            for run_id, epoch, name, value, wall_time in conn.execute(query).tuples():
                entry = histories[run_id].setdefault(epoch, {"epoch": epoch, "_wall_time": wall_time})
                entry[name] = value
                if wall_time > entry["_wall_time"]:
                    entry["_wall_time"] = wall_time
        return {run_id: [rows[epoch] for epoch in sorted(rows)] for run_id, rows in histories.items()}

    def discard_after_epoch(self, run_id: int, epoch: int) -> None:
        """Drop metrics and predictions recorded after ``epoch`` (a resume continues from there)."""
        with self._write() as conn:
            conn.execute(
                schema.metrics.delete().where(schema.metrics.c.run_id == int(run_id), schema.metrics.c.epoch > epoch)
            )
            conn.execute(
                schema.predictions.delete().where(
                    schema.predictions.c.run_id == int(run_id), schema.predictions.c.epoch > epoch
                )
            )

    # --------------------------------------------------------- predictions
    def save_predictions(
        self,
        run_id: int,
        epoch: int,
        split: str,
        sample_ids: np.ndarray,
        labels: np.ndarray,
        probabilities: np.ndarray,
    ) -> None:
        """Store one epoch's predictions for a split (replacing an earlier copy of the same epoch)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            sample_ids=np.asarray(sample_ids, dtype=np.int64),
            labels=np.asarray(labels, dtype=np.int32),
            probabilities=np.asarray(probabilities, dtype=np.float32),
        )
        with self._write() as conn:
            conn.execute(
                schema.predictions.delete().where(
                    schema.predictions.c.run_id == int(run_id),
                    schema.predictions.c.epoch == int(epoch),
                    schema.predictions.c.split == split,
                )
            )
            conn.execute(
                schema.predictions.insert().values(
                    run_id=int(run_id),
                    epoch=int(epoch),
                    split=split,
                    num_samples=int(len(labels)),
                    payload=buffer.getvalue(),
                    created_at=time.time(),
                )
            )

    def prediction_epochs(self, run_id: int, split: str) -> list[int]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(schema.predictions.c.epoch)
                .where(schema.predictions.c.run_id == int(run_id), schema.predictions.c.split == split)
                .order_by(schema.predictions.c.epoch)
            )
            return [int(row.epoch) for row in rows]

    def get_predictions(self, run_id: int, split: str, epoch: int | None = None) -> dict[str, Any] | None:
        """{"epoch", "sample_ids", "labels", "probabilities" (N, C)} for an epoch (default: the latest)."""
        query = sa.select(schema.predictions).where(
            schema.predictions.c.run_id == int(run_id), schema.predictions.c.split == split
        )
        if epoch is None:
            query = query.order_by(schema.predictions.c.epoch.desc()).limit(1)
        else:
            query = query.where(schema.predictions.c.epoch == int(epoch))
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        with np.load(io.BytesIO(row.payload)) as arrays:
            result = {name: arrays[name] for name in arrays.files}
        result["epoch"] = int(row.epoch)
        return result

    # -------------------------------------------------------------- events
    def log_event(self, run_id: int, message: str, level: str = "info") -> None:
        with self._write() as conn:
            conn.execute(
                schema.events.insert().values(run_id=int(run_id), time=time.time(), level=level, message=message)
            )

    def get_events(self, run_id: int, after_id: int = 0) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(schema.events)
                .where(schema.events.c.run_id == int(run_id), schema.events.c.id > int(after_id))
                .order_by(schema.events.c.id)
            )
            return [dict(row._mapping) for row in rows]
