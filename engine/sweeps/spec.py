"""A sweep spec: the base config, the search method, the space over dotted config paths, the objective.

The JSON a person writes (``python -m engine sweep SPEC``) or the Sweeps page builds::

    {"base": {<a RunConfig as in --config>}, "method": "grid" | "random" | "optuna",
     "trials": 6, "metric": "val_accuracy", "direction": "maximize",
     "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": true},
               "model.dropout_rate": {"low": 0.0, "high": 0.5},
               "model.architecture": {"choices": ["tutorial3d", "resnet3d"]},
               "training.batch_size": {"values": [8, 16]}}}

A range (low/high, optional log) is sampled by random and Optuna; a grid needs
``values`` (or ``choices``) for every path. Whole-number fields (batch size,
epochs) are sampled as integers. ``data.options.<knob>`` reaches dataset knobs.
Every problem is reported at once as a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from engine.config import LIMITS, DataConfig, ModelConfig, RunConfig, TrainingConfig
from engine.errors import ConfigError, Problem

METHODS = ("grid", "random", "optuna")
DIRECTIONS = ("maximize", "minimize")
# Objectives: per-epoch metrics every run records.
METRICS = ("val_accuracy", "val_loss", "val_auc", "accuracy", "loss")
MAX_TRIALS = 1000
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig}


@dataclass(frozen=True)
class Param:
    """One searched config field: a range (low, high, log) or a list of choices (``values`` for a grid)."""

    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    def describe(self) -> str:
        if self.choices is not None:
            return " | ".join(str(c) for c in self.choices)
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


@dataclass
class SweepSpec:
    base: RunConfig
    method: str = "optuna"
    trials: int = 10
    metric: str = "val_accuracy"
    direction: str = "maximize"
    space: dict[str, Param] = field(default_factory=dict)
    name: str = ""
    # Seeds the random search and Optuna's sampler (the runs keep base.training.seed, so every
    # trial trains on the same folds and trials can be compared fold by fold).
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "base": self.base.to_dict(), "method": self.method, "trials": self.trials,
            "metric": self.metric, "direction": self.direction, "seed": self.seed,
            "space": {path: param.to_dict() for path, param in self.space.items()},
        }

    @classmethod
    def from_dict(cls, raw: Any) -> "SweepSpec":
        """Parse and check a spec; ``ConfigError`` listing every problem."""
        if not isinstance(raw, dict):
            raise ConfigError(["A sweep spec must be a JSON object with base, method, trials, metric and space."])
        problems: list[Problem] = []
        unknown = sorted(set(raw) - {"name", "base", "method", "trials", "metric", "direction", "space", "seed"})
        if unknown:
            problems.append(Problem("", f"Unknown sweep spec key(s) {', '.join(unknown)}; valid keys are base, "
                                        "method, trials, metric, direction, space, name, seed."))
        try:
            base = RunConfig.from_dict(raw.get("base") or {})
        except ConfigError as e:
            base = RunConfig()
            problems.extend(Problem(f"base.{p.field}".rstrip("."), p.message) for p in e.problems)
        method = raw.get("method", "optuna")
        if method not in METHODS:
            problems.append(Problem("method", f"method is {method!r}; choose one of {', '.join(METHODS)}."))
        metric = raw.get("metric", "val_accuracy")
        if metric not in METRICS:
            problems.append(Problem("metric", f"metric is {metric!r}; choose one of {', '.join(METRICS)}."))
        direction = raw.get("direction") or ("minimize" if str(metric).endswith("loss") else "maximize")
        if direction not in DIRECTIONS:
            problems.append(Problem("direction", f"direction is {direction!r}; use maximize or minimize."))
        space_raw = raw.get("space")
        space: dict[str, Param] = {}
        if not isinstance(space_raw, dict) or not space_raw:
            problems.append(Problem("space", "space must name at least one config field, e.g. "
                                             '{"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": true}}.'))
        else:
            for path, entry in space_raw.items():
                param = _param(path, entry, method, problems)
                if param is not None:
                    space[path] = param
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            problems.append(Problem("seed", f"seed is {seed!r}; it must be a whole number >= 0."))
        trials = raw.get("trials")
        if trials is None and method == "grid" and space and not problems:
            trials = math.prod(len(param.choices) for param in space.values())
        if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= MAX_TRIALS:
            problems.append(Problem("trials", f"trials is {trials!r}; it must be a whole number in [1, {MAX_TRIALS}]."))
        if problems:
            raise ConfigError(problems)
        return cls(base=base, method=method, trials=trials, metric=metric, direction=direction, space=space,
                   name=str(raw.get("name") or ""), seed=seed)

    # ------------------------------------------------------------ configs
    def apply(self, params: dict[str, Any]) -> RunConfig:
        """The base config with ``params`` ({dotted path: value}) set."""
        raw = self.base.to_dict()
        for path, value in params.items():
            *parents, leaf = path.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return RunConfig.from_dict(raw)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in order (the first ``trials`` are run)."""
        paths = list(self.space)
        return [dict(zip(paths, combination))
                for combination in itertools.product(*(self.space[path].choices for path in paths))]


def _param(path: str, entry: Any, method: str, problems: list[Problem]) -> Param | None:
    where = f"space.{path}"
    parts = str(path).split(".")
    is_option = len(parts) == 3 and parts[:2] == ["data", "options"]
    if not is_option:
        if len(parts) != 2 or parts[0] not in _SECTIONS or parts[1] not in {
            f.name for f in dataclasses.fields(_SECTIONS[parts[0]])
        }:
            problems.append(Problem(where, f"{path!r} is not a config field; use a dotted path such as "
                                           "training.learning_rate, model.dropout_rate or data.options.size."))
            return None
    if not isinstance(entry, dict):
        problems.append(Problem(where, f"{where} must be an object: {{'low', 'high', 'log'}}, {{'choices'}} or {{'values'}}."))
        return None
    choices = entry.get("choices", entry.get("values"))
    if choices is not None:
        if not isinstance(choices, list) or not choices:
            problems.append(Problem(where, f"{where}: choices / values must be a non-empty list."))
            return None
        return Param(path, choices=tuple(choices))
    if method == "grid":
        problems.append(Problem(where, f"{where}: a grid needs a list of values, e.g. {{\"values\": [0.001, 0.01]}}."))
        return None
    low, high, log = entry.get("low"), entry.get("high"), bool(entry.get("log", False))
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or low >= high:
        problems.append(Problem(where, f"{where}: give low < high as numbers (got low {low!r}, high {high!r})."))
        return None
    if log and low <= 0:
        problems.append(Problem(where, f"{where}: a log range needs low > 0 (got {low!r})."))
        return None
    limit = LIMITS.get(path)
    if limit is not None:
        for value in (low, high):
            if not limit.allows(int(value) if limit.integer else float(value)):
                problems.append(Problem(where, f"{where}: {value!r} is outside {path}'s range, {limit.describe()}."))
                return None
    return Param(path, low=low, high=high, log=log, integer=bool(limit and limit.integer))


__all__ = ["DIRECTIONS", "METHODS", "METRICS", "Param", "SweepSpec"]
