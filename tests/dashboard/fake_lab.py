"""Fake runs and a fake model description for the dashboard tests (no worker, no TensorFlow).

A fake "running" run occupies the only CPU slot and claims to live on another
host with a fresh heartbeat, so ``jobs.reconcile`` leaves it alone and any run
the tests queue stays queued (no worker is started).
"""

from __future__ import annotations

import time
from typing import Any

from engine.config import DataConfig, RunConfig, TrainingConfig
from engine.runs import RunStatus
from ui.text import unescape_markdown

FAKE_DESCRIPTION = {
    "architecture": "tutorial3d",
    "params": 1_234_567,
    "trainable_params": 1_234_567,
    "layers": [
        {"name": "input", "type": "InputLayer", "output_shape": [None, 12, 12, 12, 1], "params": 0},
        {"name": "block1_conv", "type": "Conv3D", "output_shape": [None, 10, 10, 10, 32], "params": 896},
        {"name": "output", "type": "Dense", "output_shape": [None, 1], "params": 257},
    ],
    "activation_bytes_per_sample": 200_000,
    "estimated_training_bytes": 50_000_000,
}


def tiny_config(name: str = "", epochs: int = 5, **training: Any) -> RunConfig:
    return RunConfig(
        name=name,
        data=DataConfig(dataset="shapes3d", options={"num_samples": 16, "size": 8}),
        training=TrainingConfig(epochs=epochs, **training),
    )


def add_run(store, status: RunStatus, *, epochs_done: int = 0, epochs_total: int = 5, name: str = "",
            error: str | None = None, batches: int = 0, **fields: Any) -> int:
    """A run in ``status`` with ``epochs_done`` epochs of made-up metrics (and ``batches`` batch rows)."""
    status = RunStatus(status)
    run_id = store.create_run(tiny_config(name, epochs=epochs_total))
    now = time.time()
    rows = []
    for epoch in range(1, epochs_done + 1):
        for metric, value in (("loss", 1.0 / epoch), ("val_loss", 1.2 / epoch), ("accuracy", 1 - 0.5 / epoch),
                              ("val_accuracy", 1 - 0.6 / epoch)):
            rows.append({"kind": "epoch", "epoch": epoch, "name": metric, "value": value,
                         "wall_time": now - 10 * (epochs_done - epoch)})
        for step in range(batches):
            rows.append({"kind": "batch", "epoch": epoch, "step": step, "name": "loss", "value": 1.0 / (epoch + step)})
    store.log_metrics(run_id, rows)
    update: dict[str, Any] = {"epochs_done": epochs_done}
    if status != RunStatus.QUEUED:
        update["started_at"] = now - 10 * epochs_done - 5
    if status == RunStatus.RUNNING:
        # Another host with a fresh heartbeat: reconcile cannot check a pid and leaves it running.
        update.update(slot="cpu", host="another-host", heartbeat_at=now)
    if status.is_ended:
        update["finished_at"] = now
    if epochs_done:
        update.update(best_value=1.2 / epochs_done, best_epoch=epochs_done)
    if error:
        update["error"] = error
    update.update(fields)
    store.transition(run_id, status, from_statuses=[RunStatus.QUEUED], **update)
    return run_id


def texts(at) -> str:
    """Everything the page wrote as text (Markdown escapes removed, as a reader sees it), for loose assertions."""
    parts = [element.value for kind in ("title", "markdown", "caption", "info", "error", "warning", "success")
             for element in getattr(at, kind)]
    return "\n".join(unescape_markdown(str(part)) for part in parts)
