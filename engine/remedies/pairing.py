"""A fix, verified: the original config and the fixed one launched as pairs over the same seeds or folds.

``launch_fix`` diagnoses the run (or takes the finding it is handed), applies
the finding's remedy (engine/remedies/catalogue.py), and queues both configs
through ``jobs.launch_group`` as one group "fix-<hex>": the original's runs are
trial 0, the fixed config's trial 1, one pair per seed (or fold), queued pair by
pair so the first pairs finish first. Seed s of the original and seed s of the
fix share the split, the initial weights (where the architecture is the same)
and the batch order, so the seed-to-seed spread cancels in their difference:
the comparison is paired.

The pairing is recorded as ``<lab home>/fixes/<group>.json`` (the source run,
the finding, the remedy, its changes and the pairs of run ids); the runs carry
the group and trial in the store, so ``fix_report`` can still pair them by seed
and fold if that file is lost. ``fix_report`` gives the difference of the
result metric (fixed minus original) with its paired 95 % interval
(``engine.statistics.difference``) and a plain verdict: helped, hurt, or cannot
be told apart at this sample size.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import paths, statistics
from engine.config import MAX_FOLDS, RunConfig
from engine.doctor.findings import Finding
from engine.errors import ConfigError, LabError
from engine.remedies.catalogue import Prescription, RangeTest, prescribe
from engine.runs import RunRecord, RunStatus
from engine.store import RunStore, open_store

FIX_PREFIX = "fix"
ORIGINAL_TRIAL, FIXED_TRIAL = 0, 1
DEFAULT_SEEDS = 3
MAX_SEEDS = 20
RECORDS_DIR = "fixes"
# The result metric when none is asked for: the test accuracy (best weights, the held-out split) when every
# finished run has it, else the validation accuracy at the best epoch.
DEFAULT_METRICS = ("test_accuracy", "val_accuracy")

HELPED, HURT, UNCLEAR, PENDING = "helped", "hurt", "cannot be told apart", "waiting"


def is_fix_group(group: str | None) -> bool:
    return bool(group) and str(group).startswith(FIX_PREFIX + "-")


def records_dir() -> Path:
    return paths.lab_home() / RECORDS_DIR


def _record_path(group: str) -> Path:
    if not is_fix_group(group) or not group.replace("-", "").isalnum():
        raise LabError(f"{group!r} is not a fix group; `python -m engine fix --list` shows them (fix-...).")
    return records_dir() / f"{group}.json"


def _write_record(record: dict[str, Any]) -> None:
    path = _record_path(record["group"])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".", suffix=".json", dir=path.parent)
    with os.fdopen(handle, "w") as file:
        json.dump(record, file, indent=1, default=str)
    os.replace(temporary, path)


def read_record(group: str) -> dict[str, Any] | None:
    try:
        return json.loads(_record_path(group).read_text())
    except (OSError, ValueError):
        return None


def list_records(run_id: int | None = None) -> list[dict[str, Any]]:
    """Every recorded fix (of ``run_id`` only, when given), newest first."""
    found = []
    folder = records_dir()
    for path in sorted(folder.glob(f"{FIX_PREFIX}-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if run_id is None or record.get("run_id") == run_id:
            found.append(record)
    return sorted(found, key=lambda record: record.get("created_at", 0), reverse=True)


# ------------------------------------------------------------------ launch
def repetition_configs(config: RunConfig, *, seeds: int | None, folds: int | None) -> tuple[str, list[RunConfig]]:
    """("seeds" | "folds", the configs of one side): ``seeds`` seeds from the run's own seed, or ``folds``
    folds (the run's own k when it is a fold of a cross-validation and neither is given)."""
    from engine.datasets import splits as fold_configs

    if seeds is not None and folds is not None:
        raise ConfigError(["Give either --seeds or --folds, not both."])
    if seeds is None and folds is None and config.data.folds:
        folds = config.data.folds
    if folds is not None:
        if not isinstance(folds, int) or not 2 <= folds <= MAX_FOLDS:
            raise ConfigError([f"--folds is {folds!r}; it must be a whole number from 2 to {MAX_FOLDS}."])
        base = config.copy()
        base.data.folds, base.data.fold = folds, None
        return "folds", fold_configs.fold_configs(base)
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    if not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError([f"--seeds is {seeds!r}; it must be a whole number from 1 to {MAX_SEEDS} "
                           "(3 or more give an interval)."])
    return "seeds", fold_configs.seed_configs(config, seeds)


def find_finding(store: RunStore, run_id: int, finding_id: str) -> Finding:
    """The run's finding ``finding_id`` as the doctor sees it now; ConfigError naming the ones it has."""
    from engine import doctor

    found = doctor.diagnose(store, run_id)
    for finding in found:
        if finding.id == finding_id:
            return finding
    names = ", ".join(dict.fromkeys(finding.id for finding in found)) or "none"
    raise ConfigError([f"Run {run_id} has no finding '{finding_id}' (its findings: {names}); "
                       f"`python -m engine doctor {run_id}` lists them."])


@dataclass(frozen=True)
class FixLaunch:
    group: str
    run_id: int
    prescription: Prescription
    repetition: str
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "run_id": self.run_id, "remedy": self.prescription.remedy.id,
                "changes": [change.to_dict() for change in self.prescription.changes],
                "repetition": self.repetition, "pairs": [list(pair) for pair in self.pairs]}


def launch_fix(run_id: int, finding_id: str, *, remedy: str | None = None, seeds: int | None = None,
               folds: int | None = None, finding: Finding | None = None, store: RunStore | None = None,
               owner: str | None = None, demo_mode: bool | None = None, force: bool = False,
               range_test: RangeTest | None = None) -> FixLaunch:
    """Queue run ``run_id``'s config and its fixed config as pairs over seeds or folds; returns the launch.

    ``finding`` (default: the doctor's finding ``finding_id`` of the run now) supplies the evidence the
    remedy reads. Every config is validated (and memory-checked unless ``force``) before anything is
    queued, so a refusal leaves nothing behind.
    """
    from engine import settings, validation
    from engine.hosting import demo
    from engine.jobs import admission
    from engine.jobs import control as jobs
    from engine.datasets import splits as fold_configs

    store = store or open_store()
    run = store.get_run(run_id)
    if finding is None:
        finding = find_finding(store, run_id, finding_id)
    elif finding.id != finding_id:
        raise ConfigError([f"The finding handed over is '{finding.id}', not '{finding_id}'."])
    source = run.config.copy()
    repetition, originals = repetition_configs(source, seeds=seeds, folds=folds)  # refuses bad counts first
    prescription = prescribe(source, finding, remedy, range_test=range_test)
    _, fixed = repetition_configs(prescription.config, seeds=seeds, folds=folds)
    base_name = f"fix #{run_id} {finding.id}"
    for configs, side in ((originals, "original"), (fixed, prescription.remedy.id)):
        for config in configs:
            where = (f"fold {config.data.fold + 1}/{config.data.folds}" if config.data.fold is not None
                     else f"seed {config.training.seed}")
            config.name = f"{base_name}: {side}, {where}"
    everything = [*originals, *fixed]
    for config in everything:
        validation.validate(config)
    if settings.demo_mode(demo_mode):
        demo.check_launch(everything, owner, store)
    if not force:
        for config in everything:
            admission.check_fits(config)
    group = fold_configs.new_group_id(FIX_PREFIX)
    pairs = []
    for original, treated in zip(originals, fixed):
        (original_id,) = jobs.launch_group([original], group=group, trial=ORIGINAL_TRIAL, store=store, force=True,
                                           owner=owner, demo_mode=demo_mode)
        (fixed_id,) = jobs.launch_group([treated], group=group, trial=FIXED_TRIAL, store=store, force=True,
                                        owner=owner, demo_mode=demo_mode)
        pairs.append((original_id, fixed_id))
        store.log_event(original_id, f"paired comparison {group}: the original config of run {run_id} "
                                     f"(its fix is run {fixed_id})")
        store.log_event(fixed_id, f"paired comparison {group}: run {run_id} fixed for '{finding.id}' by "
                                  f"{prescription.remedy.id} ({'; '.join(c.text() for c in prescription.changes)})")
    launched = FixLaunch(group, run_id, prescription, repetition, pairs)
    _write_record({
        **launched.to_dict(), "finding": finding.to_dict() | {"evidence": _scalars(finding.evidence)},
        "remedy_title": prescription.remedy.title, "range_test_run": prescription.range_test_run,
        "run_name": run.name, "created_at": time.time(),
    })
    return launched


def _scalars(evidence: dict[str, Any]) -> dict[str, Any]:
    """The finding's evidence without its chart series (the record keeps what a person reads)."""
    return {key: value for key, value in evidence.items()
            if isinstance(value, (int, float, str, bool)) or value is None}


# ------------------------------------------------------------------ report
@dataclass(frozen=True)
class FixReport:
    group: str
    record: dict[str, Any] | None
    metric: str
    # One row per pair: {"key", "original_run", "fixed_run", "original", "fixed", "difference", "status"}.
    pairs: list[dict[str, Any]]
    original: statistics.Estimate | None
    fixed: statistics.Estimate | None
    difference: statistics.Difference | None
    verdict: str
    sentence: str

    @property
    def complete(self) -> int:
        return sum(1 for pair in self.pairs if pair["difference"] is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "metric": self.metric, "verdict": self.verdict, "sentence": self.sentence,
            "record": self.record, "pairs": self.pairs, "complete_pairs": self.complete,
            "original": None if self.original is None else self.original.to_dict(),
            "fixed": None if self.fixed is None else self.fixed.to_dict(),
            "difference": None if self.difference is None else self.difference.to_dict(),
        }


def lower_is_better(metric: str) -> bool:
    return "loss" in metric.lower()


def _metrics_of(store: RunStore, run: RunRecord) -> dict[str, float]:
    """The run's metrics at its best epoch plus its test metrics ("test_accuracy"): the group summary's."""
    from engine.sweeps import summary

    if run.status != RunStatus.FINISHED:
        return {}
    return summary.configuration_summary(store, [run])["folds"][0]["metrics"]


def _pairs_from_runs(runs: list[RunRecord]) -> list[tuple[int, int]]:
    """Pairs by (seed, fold) of a fix group's trial-0 and trial-1 runs (when the record is lost)."""
    def key(run: RunRecord) -> tuple[int, int]:
        return run.config.training.seed, run.config.data.fold if run.config.data.fold is not None else -1

    originals = {key(run): run.id for run in runs if run.trial == ORIGINAL_TRIAL}
    fixed = {key(run): run.id for run in runs if run.trial == FIXED_TRIAL}
    return [(originals[k], fixed[k]) for k in sorted(originals) if k in fixed]


def fix_report(group: str, *, store: RunStore | None = None, metric: str | None = None) -> FixReport:
    """The paired difference (fixed minus original) of ``metric`` over the group's finished pairs."""
    store = store or open_store()
    if not is_fix_group(group):
        raise LabError(f"{group!r} is not a fix group; fix groups start with '{FIX_PREFIX}-' "
                       "(`python -m engine fix --list`).")
    runs = {run.id: run for run in store.list_runs(group=group)}
    if not runs:
        raise LabError(f"No runs belong to the fix group {group!r}; `python -m engine fix --list` shows the fixes.")
    record = read_record(group)
    pair_ids = [tuple(pair) for pair in record["pairs"]] if record else _pairs_from_runs(list(runs.values()))
    pair_ids = [pair for pair in pair_ids if pair[0] in runs and pair[1] in runs]
    values = {run_id: _metrics_of(store, runs[run_id]) for pair in pair_ids for run_id in pair}
    if metric is None:
        finished = [metrics for metrics in values.values() if metrics]
        metric = next((name for name in DEFAULT_METRICS if finished and all(name in m for m in finished)),
                      DEFAULT_METRICS[-1])
    rows, originals, fixes = [], [], []
    for original_id, fixed_id in pair_ids:
        original_run = runs[original_id]
        a, b = values[original_id].get(metric), values[fixed_id].get(metric)
        fold = original_run.config.data.fold
        rows.append({
            "key": f"fold {fold + 1}" if fold is not None else f"seed {original_run.config.training.seed}",
            "original_run": original_id, "fixed_run": fixed_id, "original": a, "fixed": b,
            "difference": None if a is None or b is None else b - a,
            "status": f"{original_run.status.label} / {runs[fixed_id].status.label}",
        })
        if a is not None and b is not None:
            originals.append(a)
            fixes.append(b)
    difference = statistics.difference(fixes, originals, paired=True) if originals else None
    verdict, sentence = _verdict(metric, difference, len(rows), len(originals))
    return FixReport(group, record, metric, rows, statistics.metric_estimate(metric, originals),
                     statistics.metric_estimate(metric, fixes), difference, verdict, sentence)


def _verdict(metric: str, difference: statistics.Difference | None, pairs: int, complete: int) -> tuple[str, str]:
    waiting = f" ({pairs - complete} of {pairs} pair(s) still to finish)" if complete < pairs else ""
    if difference is None:
        return PENDING, f"No pair has finished yet{waiting}; the difference appears when one has."
    what = f"{metric} {difference.difference:+.4f} (fixed minus original)"
    low, high = difference.low, difference.high
    if low is None or high is None:
        return UNCLEAR, (f"{what} from {complete} pair: one pair gives no interval, so the fix cannot be told "
                         f"apart from no change; compare over 3 or more seeds or folds{waiting}.")
    interval = f"{statistics.CONFIDENCE:.0%} interval {low:+.4f} to {high:+.4f}"
    better = high < 0 if lower_is_better(metric) else low > 0
    worse = low > 0 if lower_is_better(metric) else high < 0
    if better:
        return HELPED, f"The fix helped: {what}, {interval} over {complete} paired runs{waiting}."
    if worse:
        return HURT, f"The fix hurt: {what}, {interval} over {complete} paired runs{waiting}."
    return UNCLEAR, (f"Cannot be told apart at this sample size: {what}, {interval} over {complete} paired runs "
                     f"includes no change; more seeds or folds would narrow it{waiting}.")


__all__ = ["DEFAULT_SEEDS", "FIX_PREFIX", "FixLaunch", "FixReport", "HELPED", "HURT", "PENDING", "UNCLEAR",
           "find_finding", "fix_report", "is_fix_group", "launch_fix", "list_records", "read_record",
           "repetition_configs"]
