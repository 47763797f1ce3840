"""The SQL store's queue: claiming the oldest queued run for a free slot, the worker's heartbeat, the stop flag."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

import sqlalchemy as sa

from engine.runs import RunStatus
from engine.store import schema
from engine.store.sql_connection import CLAIM_LOCK, SqlConnection


class SqlQueue(SqlConnection):
    """``RunStore``'s queue methods: the ones several processes call at once on the same rows."""

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
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
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


__all__ = ["SqlQueue"]
