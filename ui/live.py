"""Incremental reads of metric rows for the live curves.

``MetricCache`` lives in ``st.session_state``; each refresh asks the store only
for rows with an id above the last one seen (one query for all selected runs),
so a refresh costs the same at epoch 2 and at epoch 200.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.store import RunStore


@dataclass
class RunMetrics:
    after_id: int = 0
    # epoch -> {"epoch": n, name: value, ..., "_wall_time": t}
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    # batch training-loss rows: {"epoch", "step", "value"}
    batches: list[dict[str, Any]] = field(default_factory=list)

    def history(self) -> list[dict[str, Any]]:
        return [self.epochs[epoch] for epoch in sorted(self.epochs)]

    def epoch_wall_times(self) -> list[float]:
        return [row["_wall_time"] for row in self.epochs.values() if "_wall_time" in row]


class MetricCache:
    def __init__(self) -> None:
        self.runs: dict[int, RunMetrics] = {}

    def reset(self, run_id: int) -> None:
        self.runs.pop(int(run_id), None)

    def refresh(self, store: RunStore, run_ids: Sequence[int]) -> int:
        """Read the new rows of ``run_ids``; returns how many rows arrived."""
        run_ids = [int(i) for i in run_ids]
        if not run_ids:
            return 0
        for run_id in run_ids:
            self.runs.setdefault(run_id, RunMetrics())
        after_id = min(self.runs[run_id].after_id for run_id in run_ids)
        arrived = 0
        last_seen = after_id
        for row in store.get_metrics(run_ids, after_id=after_id):
            last_seen = max(last_seen, row["id"])
            metrics = self.runs[row["run_id"]]
            if row["id"] <= metrics.after_id:
                continue  # already read for this run (another run of the batch lagged behind)
            metrics.after_id = row["id"]
            arrived += 1
            if row["kind"] == "epoch":
                entry = metrics.epochs.setdefault(row["epoch"], {"epoch": row["epoch"]})
                entry[row["name"]] = row["value"]
                entry["_wall_time"] = row["wall_time"]
            elif row["kind"] == "batch" and row["name"] == "loss":
                metrics.batches.append({"epoch": row["epoch"], "step": row["step"], "value": row["value"]})
        # The query covered every selected run, so a run without rows up to
        # last_seen has none below it either (SQLite assigns ids in commit order).
        for run_id in run_ids:
            self.runs[run_id].after_id = max(self.runs[run_id].after_id, last_seen)
        return arrived

    def drop_stale(self, run_id: int, epochs_done: int) -> None:
        """Forget a run's rows when the store holds fewer epochs (a resume discarded the later ones)."""
        metrics = self.runs.get(int(run_id))
        if metrics and metrics.epochs and max(metrics.epochs) > int(epochs_done):
            self.reset(run_id)

    def get(self, run_id: int) -> RunMetrics:
        return self.runs.setdefault(int(run_id), RunMetrics())
