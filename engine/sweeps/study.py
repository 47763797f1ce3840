"""Optuna's study of a sweep, kept in the lab's own database through Optuna's RDB storage.

No second database: on SQLite the study's tables sit in the same ``lab.db``
file (same URL), on Postgres in the same database. Every process that asks,
tells or prunes (the CLI, the dashboard, each worker) loads the study from
there, so it survives restarts with the runs. Optuna is imported here only.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from engine.sweeps.spec import SweepSpec

# Seconds Optuna's own SQLite connections wait for another writer (the lab's store waits as long).
_SQLITE_TIMEOUT_S = 60
_STORAGES: dict[str, Any] = {}
# The Postgres advisory lock held while Optuna creates its tables (the store's own locks are 7272-7275).
_OPTUNA_SCHEMA_LOCK = 7276


@contextmanager
def _one_creator_at_a_time(url: str) -> Iterator[None]:
    """Serialise the creation of Optuna's tables between processes. Optuna checks for its tables and then
    creates them without a lock, so processes opening a new database at once fail with "table ... already
    exists": on Postgres a session advisory lock, on a SQLite file an exclusive lock on ``<file>.optuna-lock``
    beside it, makes the others wait and then find the tables made."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _OPTUNA_SCHEMA_LOCK})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _OPTUNA_SCHEMA_LOCK})
                    conn.commit()
        finally:
            engine.dispose()
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with open(f"{parsed.database}.optuna-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


def study_name(sweep_id: int) -> str:
    return f"conv3d-lab-sweep-{int(sweep_id)}"


def storage(url: str):
    """Optuna's RDB storage on the lab's database URL (one per process and URL)."""
    import optuna

    if url not in _STORAGES:
        kwargs = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        with _one_creator_at_a_time(url):
            _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    return _STORAGES[url]


def _sampler(spec: SweepSpec, trial: int):
    import optuna

    # TPE starts from a few random trials, then models the good and the bad ones. Seeded per
    # trial: processes asking at once must not draw the same point.
    startup = max(2, min(10, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=spec.seed * 1000 + trial, n_startup_trials=startup)


def pruner(spec: SweepSpec):
    """Median pruning: stop a trial whose best value so far is worse than the median of the other
    trials' values at the same epoch, once two trials have completed."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0, interval_steps=1)


def create(url: str, sweep_id: int, spec: SweepSpec) -> None:
    import optuna

    optuna.create_study(study_name=study_name(sweep_id), storage=storage(url), direction=spec.direction,
                        load_if_exists=True)


def frozen_trial(the_study, number: int):
    """The study's trial of this ``number`` as an ``optuna.trial.FrozenTrial`` (a fresh read of its state)."""
    [trial] = [t for t in the_study.get_trials(deepcopy=False) if t.number == int(number)]
    return trial


def running_trial(url: str, sweep_id: int, spec: SweepSpec, number: int):
    """The study's trial ``number`` as an ``optuna.trial.Trial`` that can ``report`` and ``should_prune`` from
    another process (a worker): its storage id is looked up through the storage's public interface
    (``BaseStorage.get_study_id_from_name`` and ``get_trial_id_from_study_id_trial_number``)."""
    import optuna

    the_study = load(url, sweep_id, spec)
    the_storage = storage(url)
    study_id = the_storage.get_study_id_from_name(study_name(sweep_id))
    return optuna.trial.Trial(the_study, the_storage.get_trial_id_from_study_id_trial_number(study_id, int(number)))


def load(url: str, sweep_id: int, spec: SweepSpec, trial: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name(sweep_id), storage=storage(url), sampler=_sampler(spec, trial),
                             pruner=pruner(spec))


__all__ = ["create", "frozen_trial", "load", "pruner", "running_trial", "storage", "study_name"]
