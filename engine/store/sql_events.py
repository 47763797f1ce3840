"""The SQL store's events (a run's timeline: queued, started, stopped, ...) and revoked share links."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from engine.store import schema
from engine.store.sql_connection import SqlConnection


class SqlEvents(SqlConnection):
    """``RunStore``'s event and share-link methods."""

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


__all__ = ["SqlEvents"]
