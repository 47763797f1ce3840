"""The SQL store's runs: records in and out, queueing under an admission check, updates, status
transitions as compare-and-set, restoring a run from its folder, deleting one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from engine.config import RunConfig
from engine.errors import RunNotFound
from engine.runs import ACTIVE_STATUSES, RunRecord, RunStatus
from engine.store import schema
from engine.store.base import Admission, AdmissionView, MetricRow
from engine.store.sql_connection import ADMISSION_LOCK, SqlConnection

_JSON_COLUMNS = ("config", "class_names", "split_sizes", "test_metrics", "tags")
# SQLite integers are 8 bytes: a larger id names no run (and would raise OverflowError in the driver).
_MAX_ID = 2**63 - 1


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


class SqlRuns(SqlConnection):
    """``RunStore``'s run methods (engine/store/base.py documents each)."""

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
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMISSION_LOCK})

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
        status_values = [RunStatus(status).value for status in statuses or ()]
        if status_values:
            query = query.where(schema.runs.c.status.in_(status_values))
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

    def delete_run(self, run_id: int) -> None:
        with self._write() as conn:
            for table in (schema.metrics, schema.predictions, schema.events):
                conn.execute(table.delete().where(table.c.run_id == int(run_id)))
            conn.execute(schema.runs.delete().where(schema.runs.c.id == int(run_id)))


__all__ = ["SqlRuns"]
