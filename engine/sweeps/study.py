"""Optuna's study of a sweep, kept in the lab's own database through Optuna's RDB storage.

No second database: on SQLite the study's tables sit in the same ``lab.db``
file (same URL), on Postgres in the same database. Every process that asks,
tells or prunes (the CLI, the dashboard, each worker) loads the study from
there, so it survives restarts with the runs. Optuna is imported here only.
"""

from __future__ import annotations

from typing import Any

from engine.sweeps.spec import SweepSpec

# Seconds Optuna's own SQLite connections wait for another writer (the lab's store waits as long).
_SQLITE_TIMEOUT_S = 60
_STORAGES: dict[str, Any] = {}


def study_name(sweep_id: int) -> str:
    return f"conv3d-lab-sweep-{int(sweep_id)}"


def storage(url: str):
    """Optuna's RDB storage on the lab's database URL (one per process and URL)."""
    import optuna

    if url not in _STORAGES:
        kwargs = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {"pool_pre_ping": True}
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


def load(url: str, sweep_id: int, spec: SweepSpec, trial: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study_name(sweep_id), storage=storage(url), sampler=_sampler(spec, trial),
                             pruner=pruner(spec))


__all__ = ["create", "load", "pruner", "storage", "study_name"]
