"""Cross-validation and repeated seeds: one config in, the configs of its group's runs out.

Pure functions of a ``RunConfig`` (no store, no jobs), so ``jobs.launch`` and
the sweeps can both expand a config before queueing it.
"""

from __future__ import annotations

import secrets

from engine.config import RunConfig

CV_PREFIX = "cv"
SEEDS_PREFIX = "seeds"
SWEEP_PREFIX = "sweep"


def new_group_id(prefix: str) -> str:
    """A fresh group id such as "cv-3fa9c1" (random: launchers in separate processes need no counter)."""
    return f"{prefix}-{secrets.token_hex(3)}"


def is_cross_validation(config: RunConfig) -> bool:
    """A config that asks for k folds without naming one: launching it queues one run per fold."""
    return bool(config.data.folds) and config.data.fold is None


def fold_configs(config: RunConfig) -> list[RunConfig]:
    """One config per fold (data.fold = 0..k-1, named "<name> fold i/k"); ``[config]`` without folds."""
    if not is_cross_validation(config):
        return [config]
    configs = []
    for fold in range(config.data.folds):
        copy = config.copy()
        copy.data.fold = fold
        if config.name:
            copy.name = f"{config.name} fold {fold + 1}/{config.data.folds}"
        configs.append(copy)
    return configs


def seed_configs(config: RunConfig, repeats: int) -> list[RunConfig]:
    """The config repeated over seeds seed, seed+1, ... (each expanded into its folds, if any)."""
    configs = []
    for offset in range(max(1, int(repeats))):
        copy = config.copy()
        copy.training.seed = config.training.seed + offset
        if config.name and repeats > 1:
            copy.name = f"{config.name} seed {copy.training.seed}"
        configs.extend(fold_configs(copy))
    return configs


__all__ = ["CV_PREFIX", "SEEDS_PREFIX", "SWEEP_PREFIX", "fold_configs", "is_cross_validation", "new_group_id",
           "seed_configs"]
