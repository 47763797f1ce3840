"""Tables of the run store (SQLAlchemy Core; SQLite by default, Postgres by URL)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False, index=True),  # a RunStatus value (engine/runs.py)
    sa.Column("config", sa.Text, nullable=False),  # RunConfig JSON, saved whole
    sa.Column("dataset", sa.String(100), nullable=False),
    sa.Column("architecture", sa.String(100), nullable=False),
    sa.Column("dataset_fingerprint", sa.String(80)),
    sa.Column("num_classes", sa.Integer),
    sa.Column("class_names", sa.Text),  # JSON list
    sa.Column("split_sizes", sa.Text),  # JSON {"train": n, "val": n, "test": n}; indices in runs/<id>/splits.json
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("queued_at", sa.Float),  # when it last entered the queue (launch or resume)
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("slot", sa.String(20)),  # GPU index pinned with CUDA_VISIBLE_DEVICES, or "cpu"
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("epochs_total", sa.Integer, nullable=False),
    sa.Column("epochs_done", sa.Integer, nullable=False, default=0),
    sa.Column("monitor", sa.String(40)),
    sa.Column("best_value", sa.Float),
    sa.Column("best_epoch", sa.Integer),
    sa.Column("test_metrics", sa.Text),  # JSON
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("resume_from_epoch", sa.Integer),  # set by resume(); the worker continues from here
    # The fold / seed / sweep group ("cv-1a2b3c", "seeds-...", "sweep-4") and, in a sweep, the trial.
    sa.Column("group", sa.String(64), index=True),
    sa.Column("trial", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("traceback", sa.Text),
    # Schema version 3: what a person adds to a run, and the model's size.
    sa.Column("tags", sa.Text, nullable=False, default="[]"),  # JSON list of strings
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("archived", sa.Boolean, nullable=False, default=False, index=True),  # hidden from lists by default
    sa.Column("num_params", sa.Integer),  # parameters of the built model (written when the model is built)
    # Schema version 6: who launched the run (a dashboard session or login identity); NULL from the CLI.
    sa.Column("owner", sa.String(200)),
    # Schema version 7: the run whose weights this one started from (training.init_from); NULL otherwise.
    sa.Column("parent_run", sa.Integer),
    # Schema version 8: the sweep whose trial this run is (its group is then "sweep-<id>"); NULL otherwise.
    sa.Column("sweep_id", sa.Integer, index=True),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # "epoch" | "batch" | "test"
    sa.Column("epoch", sa.Integer, nullable=False),  # 1-based
    sa.Column("step", sa.Integer),  # batch index within the epoch, for kind == "batch"
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("wall_time", sa.Float, nullable=False),
    sa.Index("ix_metrics_run_id_id", "run_id", "id"),
)
# One row per run, epoch and metric (and per batch step for batch rows): a second trainer of the
# same run cannot append to its history; the store refuses the row.
METRICS_UNIQUE_EPOCH = sa.Index(
    "uq_metrics_run_kind_epoch_name", metrics.c.run_id, metrics.c.kind, metrics.c.epoch, metrics.c.name,
    unique=True, sqlite_where=metrics.c.kind != "batch", postgresql_where=metrics.c.kind != "batch",
)
METRICS_UNIQUE_BATCH = sa.Index(
    "uq_metrics_run_batch_step_name", metrics.c.run_id, metrics.c.epoch, metrics.c.step, metrics.c.name,
    unique=True, sqlite_where=metrics.c.kind == "batch", postgresql_where=metrics.c.kind == "batch",
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("split", sa.String(10), nullable=False),  # "val" | "test"
    sa.Column("num_samples", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # compressed npz: sample_ids, labels, probabilities
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("run_id", "epoch", "split", name="uq_predictions_run_epoch_split"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_events_run_id_id", "run_id", "id"),
)

# A sweep: its spec (JSON, engine/sweeps/spec.py) and how far it is. Its runs carry its id in runs.sweep_id
# (and, for display and grouping, group "sweep-<id>").
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("finished_at", sa.Float),  # set when every trial has been told, or after a stop
)

# One configuration a sweep tried: its parameters and, once all its runs ended, its objective.
sweep_trials = sa.Table(
    "sweep_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=False),
    sa.Column("trial", sa.Integer, nullable=False),  # 0, 1, ... within the sweep
    sa.Column("params", sa.Text),  # JSON {dotted path: value}; NULL while the trial is being asked for
    # Schema version 9: Optuna's trial number in the sweep's study (method optuna); replaced optuna_trial_id,
    # the id of Optuna's storage, which only its private API accepts.
    sa.Column("optuna_trial_number", sa.Integer),
    sa.Column("outcome", sa.String(20)),  # NULL while open; "complete" | "pruned" | "fail" once told
    sa.Column("value", sa.Float),  # the objective: mean over its runs of the metric's best epoch value
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.UniqueConstraint("sweep_id", "trial", name="uq_sweep_trials_sweep_trial"),
)

# Read-only share links revoked before their expiry (engine/hosting/share.py): a link whose token id is here is refused.
# A table the upgrade creates when it is missing (create_all), so it needs no migration step.
share_revocations = sa.Table(
    "share_revocations",
    metadata,
    sa.Column("token_id", sa.String(40), primary_key=True),
    sa.Column("revoked_at", sa.Float, nullable=False),
)

# One row: the version of this database's schema (engine/store/migrations.py).
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)
