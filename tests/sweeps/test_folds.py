"""k-fold cross-validation: stratified, group-aware folds, the test split held out once, one run per fold."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import jobs, paths
from engine.config import RunConfig
from engine.datasets.splits import make_fold_splits
from engine.errors import ConfigError
from engine.runs import RunStatus
from engine.datasets import splits
from tests.jobs.helpers import tiny_config, wait_ended
from tests import fake_worker
from tests.store.postgres import on_both_stores


def _labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_folds_are_stratified_within_one_sample_and_share_one_test_split():
    labels = np.random.default_rng(3).permutation(_labels([23, 17, 9]))
    k = 4
    splits = [make_fold_splits(labels, k, fold, test_fraction=0.2, seed=5) for fold in range(k)]
    test = splits[0].test
    rest = np.setdiff1d(np.arange(len(labels)), test)
    whole = np.bincount(labels[rest], minlength=3) / len(rest)
    for split in splits:
        assert np.array_equal(split.test, test)  # held out once, before folding
        assert not set(split.val) & set(test) and not set(split.train) & set(test)
        assert sorted([*split.train, *split.val]) == sorted(rest)
        counts = np.bincount(labels[split.val], minlength=3)
        assert np.all(np.abs(counts - whole * len(split.val)) <= 1.0), counts  # within one sample
    # The validation folds partition the rest.
    assert sorted(np.concatenate([s.val for s in splits])) == sorted(rest)


def test_folds_keep_groups_whole():
    rng = np.random.default_rng(0)
    group_labels = rng.integers(0, 3, 60)
    sizes = rng.integers(1, 4, 60)  # one to three samples per source (patient)
    labels = np.repeat(group_labels, sizes)
    groups = np.repeat(np.arange(60), sizes)
    k = 3
    splits = [make_fold_splits(labels, k, fold, test_fraction=0.2, seed=1, groups=groups) for fold in range(k)]
    test_groups = set(groups[splits[0].test])
    fold_of_group: dict[int, int] = {}
    for fold, split in enumerate(splits):
        assert not test_groups & set(groups[split.train]) and not test_groups & set(groups[split.val])
        for group in set(groups[split.val]):
            assert fold_of_group.setdefault(group, fold) == fold  # no group in two folds
    rest = np.concatenate([s.val for s in splits])
    whole = np.bincount(labels[rest], minlength=3) / len(rest)
    for split in splits:
        counts = np.bincount(labels[split.val], minlength=3)
        # Whole groups move together: class counts are balanced to within one group (at most 3 samples).
        assert np.all(np.abs(counts - whole * len(split.val)) <= sizes.max()), counts


def test_singleton_groups_fold_within_one_sample():
    labels = _labels([12, 12, 6])
    groups = np.arange(len(labels))  # every sample its own source: nothing shared
    for fold in range(3):
        split = make_fold_splits(labels, 3, fold, 0.2, seed=2, groups=groups)
        whole = np.bincount(labels[np.setdiff1d(np.arange(30), split.test)], minlength=3) / 24
        assert np.all(np.abs(np.bincount(labels[split.val], minlength=3) - whole * len(split.val)) <= 1.0)


def test_fold_configs_and_config_checks():
    config = tiny_config()
    config.data.folds = 3
    expanded = splits.fold_configs(config)
    assert [c.data.fold for c in expanded] == [0, 1, 2] and all(c.data.folds == 3 for c in expanded)
    assert splits.fold_configs(expanded[1]) == [expanded[1]]  # a single fold stays one run
    assert [c.training.seed for c in splits.seed_configs(tiny_config(), 3)] == [0, 1, 2]
    bad = RunConfig.from_dict({"data": {"folds": 1}})
    assert [p.field for p in bad.field_problems()] == ["data.folds"]
    assert "0..2" in RunConfig.from_dict({"data": {"folds": 3, "fold": 3}}).field_problems()[0].message


@on_both_stores
def test_launch_with_folds_queues_one_run_per_fold_in_one_group(store, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.5")
    config = tiny_config()
    config.data.folds = 3
    first = jobs.launch(config)
    runs = sorted(store.list_runs(), key=lambda r: r.id)
    assert [r.id for r in runs][0] == first and len(runs) == 3
    assert len({r.group for r in runs}) == 1 and runs[0].group.startswith("cv-")
    assert [r.config.data.fold for r in runs] == [0, 1, 2]
    assert sum(r.status == RunStatus.RUNNING for r in runs) == 1  # one slot
    for run in runs:
        assert wait_ended(store, run.id, 60).status == RunStatus.FINISHED
    with pytest.raises(ConfigError):
        jobs.launch({"data": {"dataset": "shapes3d", "folds": 3, "fold": 5}})


def _cli(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=paths.REPO_ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def test_three_fold_cv_of_a_tiny_model_from_the_cli(jobs_lab):
    """A real 3-fold CV trained in the foreground; `runs --json` carries the group; `group` summarises it."""
    result = _cli("train", "--dataset", "shapes3d", "--option", "num_samples=36", "--option", "size=12",
                  "--arch", "tutorial3d", "--width", "0.25", "--epochs", "2", "--batch-size", "8",
                  "--folds", "3", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"run_id"')]
    assert [s["status"] for s in summaries] == ["finished"] * 3
    rows = json.loads(_cli("runs", "--json").stdout)
    groups = {row["group"] for row in rows}
    assert len(rows) == 3 and len(groups) == 1 and next(iter(groups)).startswith("cv-")
    group = next(iter(groups))
    report = json.loads(_cli("group", group, "--json").stdout)
    [configuration] = report["configurations"]
    assert [f["fold"] for f in configuration["folds"]] == [0, 1, 2]  # the config's index ...
    assert [f["fold_label"] for f in configuration["folds"]] == ["1/3", "2/3", "3/3"]  # ... and as shown
    assert all(len(f["curve"]) == 2 for f in configuration["folds"])  # per-fold curves
    accuracy = configuration["summary"]["val_accuracy"]
    assert accuracy["n"] == 3 and accuracy["std"] is not None and accuracy["low"] <= accuracy["mean"] <= accuracy["high"]
    text = _cli("group", group).stdout
    assert "val_accuracy" in text and "±" in text
    assert "fold 1/3" in text and "fold 3/3" in text and "fold 0 " not in text  # numbered as on the pages
