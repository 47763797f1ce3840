"""The training doctor: findings (id, severity, evidence, suggestion) about a run or a dataset.

``diagnose(store, run_id)`` reads what the store and the run folder hold (the
epoch curves, the validation predictions of every epoch, the worker's checks,
the split indices) and returns findings in root-cause order (findings.py's
ROOT_CAUSE_ORDER): a finding that a higher one explains carries ``caused_by``
and follows it; a run still training is diagnosed on the epochs it has. ``check_dataset(name, ...)`` runs the data
checks before any training. Everything here is NumPy / SciPy: the dashboard
calls it directly, and TensorFlow is never imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import datasets
from engine.doctor import data, history, predictions
from engine.doctor.findings import CHECK_KIND, Finding, Severity, count, link_consequences, sort_findings
from engine.errors import LabError
from engine.runs import RunRecord
from engine.store import RunStore, artefacts

# The data findings of a run depend only on its dataset and split: computed once, kept in its folder.
DATA_MEMO = "doctor-data.json"
# Bumped when the data checks change (2: shift-tolerant near-duplicates, groups by name): older memos are redone.
DATA_MEMO_VERSION = 2


@dataclass
class RunFacts:
    """What the doctor reads about one run (built by ``gather``, or by hand in tests)."""

    run: RunRecord
    history: list[dict[str, Any]]
    val_predictions: dict[int, predictions.Predictions]
    # {name: (epoch, value)} of the worker's check rows (the latest epoch of each name).
    checks: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Findings about the run's splits and leakage, and the training class counts (None when unknown).
    data_findings: list[Finding] = field(default_factory=list)
    train_counts: list[int] | None = None
    # (min, max) of a few training volumes after the run's normalisation (None when unknown).
    input_range: tuple[float, float] | None = None


def gather(store: RunStore, run_id: int, *, with_data: bool = True) -> RunFacts:
    run = store.get_run(run_id)
    val = {}
    for epoch in store.prediction_epochs(run_id, "val"):
        stored = store.get_predictions(run_id, "val", epoch)
        if stored is not None:
            val[epoch] = (np.asarray(stored["labels"]), np.asarray(stored["probabilities"]))
    checks: dict[str, tuple[int, float]] = {}
    for row in store.get_metrics(run_id, kind=CHECK_KIND):
        if row["name"] not in checks or row["epoch"] >= checks[row["name"]][0]:
            checks[row["name"]] = (int(row["epoch"]), float(row["value"]))
    facts = RunFacts(run=run, history=store.epoch_history(run_id), val_predictions=val, checks=checks)
    if with_data:
        facts.data_findings, facts.train_counts, facts.input_range = _data_facts(store, run, val)
    return facts


def _data_facts(store: RunStore, run: RunRecord, val) -> tuple[list[Finding], list[int] | None,
                                                                   tuple[float, float] | None]:
    """Split and leakage findings from runs/<id>/splits.json and the dataset (memoised in the run folder);
    without a split file, the split checks on the stored validation and test labels."""
    folder = artefacts.run_folder(run.id)  # a reader: a deleted folder stays deleted
    splits_path, memo_path = folder / "splits.json", folder / DATA_MEMO
    class_names = list(run.class_names) or [str(i) for i in range(run.num_classes or 0)]
    if not splits_path.exists():
        labels = {}
        if val:
            labels["val"] = val[max(val)][0]
        test = store.get_predictions(run.id, "test")
        if test is not None:
            labels["test"] = np.asarray(test["labels"])
        return data.split_findings(labels, class_names, class_weight=run.config.training.class_weight), None, None
    normalization = run.config.data.normalization
    if memo_path.exists():
        memo = json.loads(memo_path.read_text())
        if memo.get("version") == DATA_MEMO_VERSION and memo.get("fingerprint") == run.dataset_fingerprint and \
                memo.get("class_weight") == run.config.training.class_weight and \
                memo.get("normalization") == normalization and "input_range" in memo:
            found_range = memo["input_range"]
            return ([Finding.from_dict(raw) for raw in memo["findings"]], memo["train_counts"],
                    tuple(found_range) if found_range else None)
    try:
        dataset = datasets.load_dataset(run.dataset, run.config.data.options)
        splits = datasets.Splits.from_dict(json.loads(splits_path.read_text()))
    except (LabError, OSError, ValueError, KeyError) as e:
        return [Finding(id="data_unavailable", severity=Severity.NOTE, title=f"The split checks were skipped: {e}",
                        suggestion="Restore the dataset to check the splits and leakage.")], None, None
    found = run_data_findings(dataset, splits, class_weight=run.config.training.class_weight)
    train_counts = datasets.class_counts(dataset.y[splits.train], dataset.num_classes)
    value_range = data.input_range(dataset.x, splits.train, normalization)
    if folder.is_dir():
        memo_path.write_text(json.dumps({
            "version": DATA_MEMO_VERSION, "fingerprint": dataset.fingerprint,
            "class_weight": run.config.training.class_weight,
            "normalization": normalization, "input_range": value_range,
            "findings": [finding.to_dict() for finding in found], "train_counts": train_counts,
        }, default=float))
    return found, train_counts, value_range


def run_data_findings(dataset: datasets.Dataset, splits: datasets.Splits, class_weight: str | None) -> list[Finding]:
    """The split and leakage checks of a dataset under one split."""
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    predefined = dataset.predefined_split is not None and bool(np.any(np.asarray(dataset.predefined_split) >= 0))
    found = data.split_findings({name: dataset.y[indices] for name, indices in parts.items()}, dataset.class_names,
                                predefined=predefined, class_weight=class_weight)
    return found + data.leakage_findings(dataset.x, parts, dataset.groups, dataset.sample_ids, dataset.group_names)


def diagnose_facts(facts: RunFacts) -> list[Finding]:
    run, config = facts.run, facts.run.config
    class_names = list(run.class_names) or [str(i) for i in range(run.num_classes or 0)]
    rate_findings = history.learning_rate(facts.history, config, run.error, num_classes=len(class_names))
    first_loss = next((float(row["loss"]) for row in facts.history if row.get("loss") is not None), None)
    found: list[Finding | None] = [
        # First: with the learning-rate findings, the scale is the cause to fix first (a lower rate hides it).
        data.input_scale(facts.input_range, first_loss, len(class_names), config.data.normalization,
                         learning_rate_problem=any(f.severity == Severity.PROBLEM for f in rate_findings)),
        history.fitting(facts.history, config, len(class_names), facts.train_counts),
        *rate_findings,
        predictions.collapse(facts.val_predictions, class_names, run.positive_class),
        predictions.batchnorm_gap(
            facts.checks, batch_size=config.training.batch_size, momentum=config.model.batchnorm_momentum,
            train_samples=run.split_sizes.get("train"),
        ),
        *facts.data_findings,
        predictions.capacity(facts.checks, run.split_sizes.get("train")),
        predictions.chance(facts.val_predictions, run.best_epoch, facts.train_counts, len(class_names)),
    ]
    return sort_findings(link_consequences([finding for finding in found if finding is not None]))


def diagnose(store: RunStore, run_id: int, *, with_data: bool = True) -> list[Finding]:
    """The findings of run ``run_id``, problems first."""
    return diagnose_facts(gather(store, run_id, with_data=with_data))


def check_dataset(name: str, options: dict[str, Any] | None = None, *, val_fraction: float = 0.15,
                  test_fraction: float = 0.15, seed: int = 0, class_weight: str | None = None) -> list[Finding]:
    """The checks before training: class balance per split, duplicates and groups across splits,
    constant or empty volumes, and one-number shortcuts (brightness, foreground size) between classes."""
    dataset = datasets.load_dataset(name, options)
    splits = datasets.make_splits(dataset, val_fraction, test_fraction, seed=seed)
    found = run_data_findings(dataset, splits, class_weight)
    return sort_findings(found + data.volume_findings(dataset.x, dataset.y, dataset.class_names))


__all__ = [
    "Finding", "RunFacts", "Severity", "check_dataset", "count", "diagnose", "diagnose_facts", "gather",
    "link_consequences", "run_data_findings", "sort_findings",
]
