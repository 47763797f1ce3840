"""The config side of a comparison: flat config fields, what the presets set, differences, and run filters."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.config import PRESET_KNOBS, RunConfig
from engine.errors import LabError
from engine.runs import RunRecord, RunStatus, fold_label

# The run columns of the selection table that are not config fields.
RUN_FIELDS = ("name", "status", "tags", "created")


# ----------------------------------------------------------------- config
def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = ", ".join(str(item) for item in value)
    else:
        out[prefix] = value


def flat_config(config: RunConfig) -> dict[str, Any]:
    """The config as dotted fields: {"training.learning_rate": 0.001, "data.options.num_samples": 400, ...}
    (lists joined with ", "; the run's name is not a config field here)."""
    raw = config.to_dict()
    raw.pop("name", None)
    out: dict[str, Any] = {}
    _flatten("", raw, out)
    return out


PRESET_MARK = "(preset)"


def preset_fields(config: RunConfig) -> set[str]:
    """The dotted model fields whose value this config leaves to its preset (None in the config)."""
    return {f"model.{knob}" for knob in PRESET_KNOBS if getattr(config.model, knob) is None}


def effective_config(config: RunConfig) -> dict[str, Any]:
    """``flat_config`` with every knob the preset decides replaced by the preset's value, so a table or a
    plot shows what the model was built with ("model.dropout_rate": 0.0, not None); ``preset_fields`` says
    which of them came from the preset."""
    from engine.models import registry  # plain Python: the presets' reference values

    flat = flat_config(config)
    try:
        defaults = registry.get_spec(config.model.architecture).defaults
    except LabError:
        return flat  # an unknown preset (a run from an older lab): leave its fields as recorded
    for name in preset_fields(config):
        knob = name.split(".", 1)[1]
        if knob in defaults:
            flat[name] = defaults[knob]
    return flat


def effective_cell(config: RunConfig, name: str) -> str:
    """A field's effective value as table text: "0.3 (preset)" when the preset decided it, "0" otherwise."""
    value = effective_config(config).get(name)
    text = _cell(value) if value is not None else ""
    return f"{text} {PRESET_MARK}" if name in preset_fields(config) else text


def _key(value: Any) -> str:
    """A canonical text for comparing and grouping values (1 and 1.0 are the same value)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def config_fields(runs: Sequence[RunRecord]) -> list[str]:
    """Every dotted config field that any of ``runs`` has, in config order."""
    fields: dict[str, None] = {}
    for run in runs:
        fields.update(dict.fromkeys(flat_config(run.config)))
    return list(fields)


def differing_fields(runs: Sequence[RunRecord]) -> list[str]:
    """The config fields whose effective values (a preset's default filled in) are not the same in every
    one of ``runs``."""
    flats = [effective_config(run.config) for run in runs]
    return [name for name in config_fields(runs) if len({_key(flat.get(name)) for flat in flats}) > 1]


def config_table(runs: Sequence[RunRecord], only_differences: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """(table with one row per config field and one column per run label, the differing fields).

    Cells are text: the effective value, marked "(preset)" where the preset decided it ("0.3 (preset)").
    """
    differing = differing_fields(runs)
    names = differing if only_differences else config_fields(runs)
    columns = {}
    for run in runs:
        flat, from_preset = effective_config(run.config), preset_fields(run.config)
        if flat.get("data.fold") is not None:
            flat["data.fold"] = fold_label(run.config)  # "1/3", as folds are numbered wherever shown
        columns[run.label] = [_cell(flat.get(name, "")) + (f" {PRESET_MARK}" if name in from_preset else "")
                              for name in names]
    frame = pd.DataFrame(columns, index=pd.Index(names, name="field"))
    return frame, differing


def _cell(value: Any) -> str:
    if value is None:
        return "none"  # a field left unset (data.folds without CV); a preset's knob is filled in before
    if isinstance(value, float):
        return f"{value:.4g}"  # 4 significant digits, as the summary and the Sweeps page show numbers
    return str(value)


def field_value(run: RunRecord, name: str) -> Any:
    """The effective value of a dotted config field of ``run`` (None when the run has no such field)."""
    return effective_config(run.config).get(name)


# ----------------------------------------------------------------- filters
@dataclass(frozen=True)
class RunFilter:
    """What the selection table shows; every part that is set must match (empty parts match all)."""

    name: str = ""  # part of the name, any case
    datasets: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    statuses: tuple[RunStatus, ...] = ()
    tags: tuple[str, ...] = ()  # runs carrying any of these
    created_after: float | None = None  # timestamps, inclusive
    created_before: float | None = None
    field: str = ""  # a dotted config field ...
    value: str = ""  # ... and the value it must have (numbers compare as numbers, text without case)


def _value_matches(value: Any, wanted: str, from_preset: bool = False) -> bool:
    wanted = wanted.strip()
    if from_preset and wanted.lower() in ("preset", "preset default", PRESET_MARK):
        return True
    if value is None:
        return wanted.lower() in ("", "none", "null", "preset default")
    try:
        return math.isclose(float(value), float(wanted), rel_tol=1e-9) and not isinstance(value, str)
    except (TypeError, ValueError):
        return str(value).strip().lower() == wanted.lower()


def filter_runs(runs: Iterable[RunRecord], run_filter: RunFilter) -> list[RunRecord]:
    """The runs that match every part of ``run_filter`` (order kept)."""
    wanted_name = run_filter.name.strip().lower()
    wanted_tags = set(run_filter.tags)
    statuses = {RunStatus(status) for status in run_filter.statuses}
    kept = []
    for run in runs:
        if wanted_name and wanted_name not in run.name.lower():
            continue
        if run_filter.datasets and run.dataset not in run_filter.datasets:
            continue
        if run_filter.architectures and run.architecture not in run_filter.architectures:
            continue
        if statuses and run.status not in statuses:
            continue
        if wanted_tags and not wanted_tags & set(run.tags):
            continue
        if run_filter.created_after is not None and run.created_at < run_filter.created_after:
            continue
        if run_filter.created_before is not None and run.created_at > run_filter.created_before:
            continue
        if run_filter.field and run_filter.value.strip():
            flat = effective_config(run.config)
            if run_filter.field not in flat or not _value_matches(
                    flat[run_filter.field], run_filter.value, run_filter.field in preset_fields(run.config)):
                continue
        kept.append(run)
    return kept
