"""The SQL store's sweeps and their trials: claimed one at a time, each ended once."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from engine.errors import LabError
from engine.runs import SweepRecord, TrialOutcome, TrialRecord
from engine.store import schema
from engine.store.sql_connection import TRIAL_LOCK, SqlConnection


class SqlSweeps(SqlConnection):
    """``RunStore``'s sweep methods."""

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
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": TRIAL_LOCK})
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


__all__ = ["SqlSweeps"]
