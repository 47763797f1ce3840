"""`fix` on planted problems: the paired runs are queued (same seeds, trial 0 original / 1 fixed, one group),
the remedy is in the second config only, and the report gives the paired difference with its interval.

The workers are the real ones under the fake-worker hook (a made-up curve from the learning rate and dropout,
no TensorFlow): the queue, the claiming and the store are real, the training is not the point here.
"""

from __future__ import annotations

import json

import pytest

from engine.doctor.findings import BN_ACCURACY_BATCH, BN_ACCURACY_INFERENCE, CHECK_KIND, Finding, Severity
from engine.errors import ConfigError
from engine.remedies import pairing
from engine.runs import RunStatus
from engine.store import RunStore
from tests import fake_worker
from tests.cli_in_process import run_cli
from tests.jobs.helpers import tiny_config, wait_ended


@pytest.fixture
def fake_workers(monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.2")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")


def _planted(store: RunStore, history: dict[str, list[float]] | None = None, checks: dict[str, float] | None = None,
             batchnorm: bool | None = None, **training) -> int:
    """A finished run of the tiny config whose stored history / checks carry a planted problem."""
    config = tiny_config(epochs=3, **training)
    config.model.batchnorm = batchnorm
    run_id = store.create_run(config, status=RunStatus.FINISHED)
    epochs = len(next(iter(history.values()))) if history else 3
    store.update_run(run_id, class_names=["a", "b"], num_classes=2, epochs_done=epochs, best_epoch=1,
                     split_sizes={"train": 32, "val": 8, "test": 8})
    rows = [{"kind": "epoch", "epoch": epoch, "name": name, "value": values[epoch - 1]}
            for name, values in (history or {}).items() for epoch in range(1, len(values) + 1)]
    rows += [{"kind": CHECK_KIND, "epoch": epochs, "name": name, "value": value}
             for name, value in (checks or {}).items()]
    store.log_metrics(run_id, rows)
    return run_id


def _settle(store: RunStore, launched: pairing.FixLaunch) -> None:
    for pair in launched.pairs:
        for run_id in pair:
            assert wait_ended(store, run_id).status == RunStatus.FINISHED


def _check_pairs(store: RunStore, launched: pairing.FixLaunch, seeds: int, source: int) -> None:
    assert len(launched.pairs) == seeds and launched.repetition == "seeds"
    source_config = store.get_run(source).config
    for index, (original_id, fixed_id) in enumerate(launched.pairs):
        original, fixed = store.get_run(original_id), store.get_run(fixed_id)
        assert original.group == fixed.group == launched.group and launched.group.startswith("fix-")
        assert (original.trial, fixed.trial) == (pairing.ORIGINAL_TRIAL, pairing.FIXED_TRIAL)
        assert original.config.training.seed == fixed.config.training.seed == source_config.training.seed + index
        # The original is the source config (its seed and name aside); every difference of the fix is a change.
        expected = source_config.copy()
        expected.training.seed, expected.name = original.config.training.seed, original.config.name
        assert original.config.to_dict() == expected.to_dict()
        for change in launched.prescription.changes:
            section, name = change.field.split(".")
            assert getattr(getattr(fixed.config, section), name) == change.new
    record = pairing.read_record(launched.group)
    assert record["run_id"] == source and [tuple(p) for p in record["pairs"]] == launched.pairs


def _check_report(store: RunStore, launched: pairing.FixLaunch, verdict: str) -> pairing.FixReport:
    report = pairing.fix_report(launched.group, store=store)
    assert report.metric == "val_accuracy" and report.complete == len(launched.pairs)
    difference = report.difference
    assert difference is not None and difference.paired and difference.low is not None
    mean = sum(row["fixed"] - row["original"] for row in report.pairs) / len(report.pairs)
    assert difference.difference == pytest.approx(mean)
    assert difference.low <= difference.difference <= difference.high
    assert report.verdict == verdict, report.sentence
    return report


def test_overfitting_fix_pairs_three_seeds_and_reports_that_dropout_helped_this_curve(store, fake_workers):
    source = _planted(store, {
        "loss": [0.6, 0.3, 0.1, 0.05, 0.02], "val_loss": [0.6, 0.5, 0.7, 0.9, 1.2],
        "accuracy": [0.7, 0.9, 0.97, 0.99, 1.0], "val_accuracy": [0.7, 0.75, 0.7, 0.68, 0.66],
    })
    launched = pairing.launch_fix(source, "overfitting", seeds=3, store=store)
    assert launched.prescription.remedy.id == "regularise"
    _check_pairs(store, launched, 3, source)
    fixed = store.get_run(launched.pairs[0][1]).config
    assert fixed.model.dropout_rate == 0.2 and fixed.training.augment and fixed.training.early_stopping
    _settle(store, launched)
    # The fake curve is best at dropout 0.2: the tutorial net's 0 raised to 0.2 scores higher, seed after seed.
    report = _check_report(store, launched, pairing.HELPED)
    assert report.sentence.startswith("The fix helped") and "95% interval" in report.sentence


def test_divergence_fix_takes_the_range_tests_rate_and_helps(store, fake_workers):
    source = _planted(store, {"loss": [2.0, 40.0, 4.7e6], "val_loss": [2.0, 50.0, 5e6]}, learning_rate=0.5)
    launched = pairing.launch_fix(source, "divergence", seeds=2, store=store,
                                  range_test=lambda config: {"run_id": None, "suggestion": {"suggested": 3e-3}})
    _check_pairs(store, launched, 2, source)
    assert store.get_run(launched.pairs[1][1]).config.training.learning_rate == 3e-3
    assert store.get_run(launched.pairs[1][0]).config.training.learning_rate == 0.5
    _settle(store, launched)
    _check_report(store, launched, pairing.HELPED)


def test_batchnorm_gap_and_imbalance_fixes_change_one_knob_and_cannot_be_told_apart_here(store, fake_workers):
    # The fake curve ignores momentum and class weights: the paired difference is 0, its interval too.
    gap = _planted(store, {"loss": [0.6, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5]},
                   checks={BN_ACCURACY_INFERENCE: 0.50, BN_ACCURACY_BATCH: 0.975}, batchnorm=True, batch_size=8)
    bn = pairing.launch_fix(gap, "batchnorm_gap", seeds=2, store=store)
    assert [change.field for change in bn.prescription.changes] == ["model.batchnorm_momentum"]
    _check_pairs(store, bn, 2, gap)
    imbalanced = _planted(store, {"loss": [0.6, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5]})
    planted = Finding(id="imbalance", severity=Severity.WARNING, title="Class imbalance", suggestion="",
                      evidence={"train_counts": {"a": 30, "b": 4}, "ratio": 0.13, "class_weight": "none"})
    weights = pairing.launch_fix(imbalanced, "imbalance", seeds=2, store=store, finding=planted)
    assert store.get_run(weights.pairs[0][1]).config.training.class_weight == "balanced"
    assert store.get_run(weights.pairs[0][0]).config.training.class_weight == "none"
    _settle(store, bn)
    _settle(store, weights)
    for launched in (bn, weights):
        report = _check_report(store, launched, pairing.UNCLEAR)
        assert report.difference.difference == 0 and "Cannot be told apart" in report.sentence


def test_a_finding_the_run_does_not_have_is_refused_and_nothing_is_queued(store, fake_workers):
    source = _planted(store, {"loss": [0.6, 0.5, 0.4], "val_loss": [0.6, 0.55, 0.5]})
    with pytest.raises(ConfigError, match="has no finding 'overfitting'"):
        pairing.launch_fix(source, "overfitting", store=store)
    with pytest.raises(ConfigError, match="--seeds"):
        pairing.launch_fix(source, "imbalance", seeds=0, store=store, finding=Finding(
            id="imbalance", severity=Severity.WARNING, title="", suggestion=""))
    assert [run.id for run in store.list_runs()] == [source]


def test_the_cli_launches_over_folds_and_reports_as_json(store, fake_workers, capsys):
    source = _planted(store, {
        "loss": [0.6, 0.3, 0.1, 0.05, 0.02], "val_loss": [0.6, 0.5, 0.7, 0.9, 1.2],
        "accuracy": [0.7, 0.9, 0.97, 0.99, 1.0], "val_accuracy": [0.7, 0.75, 0.7, 0.68, 0.66],
    })
    code, out, _ = run_cli(capsys, "fix", str(source))
    assert code == 0 and "overfitting: regularise" in out and "augment (" in out
    code, out, _ = run_cli(capsys, "fix", str(source), "overfitting", "--remedy", "augment", "--folds", "2", "--wait",
                            "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["repetition"] == "folds" and len(payload["pairs"]) == 2
    folds = [store.get_run(pair[1]).config.data.fold for pair in payload["pairs"]]
    assert folds == [0, 1]
    report = payload["report"]
    assert report["complete_pairs"] == 2 and report["difference"]["paired"]
    code, out, _ = run_cli(capsys, "fix", "--report", payload["group"])
    assert code == 0 and "fixed minus original" in out and "fold 2" in out
    code, _, err = run_cli(capsys, "fix", "--report", "cv-123456")
    assert code == 2 and "not a fix group" in err
