"""The SQL store's results of training: metric rows (read incrementally for live curves) and each
epoch's predictions (compressed arrays)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from engine.errors import DuplicateMetrics
from engine.store import schema
from engine.store.base import MetricRow
from engine.store.sql_connection import SqlConnection


class SqlResults(SqlConnection):
    """``RunStore``'s metric and prediction methods."""

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


__all__ = ["SqlResults"]
