"""One real paired fix end to end: `python -m engine fix RUN overfitting --seeds 2 --wait` trains the original
and the fixed tiny config in real workers (TensorFlow), and the report pairs their test accuracies."""

from __future__ import annotations

import json

import pytest

from engine.runs import RunStatus
from tests.cli_in_process import run_cli
from tests.jobs.helpers import tiny_config


def test_a_real_fix_trains_both_configs_per_seed_and_reports_the_paired_test_accuracy(store, capsys):
    config = tiny_config(epochs=1)
    source = store.create_run(config, status=RunStatus.FINISHED)
    store.update_run(source, class_names=["a", "b"], num_classes=2, epochs_done=4, best_epoch=1)
    store.log_metrics(source, [  # a planted memorising history: the doctor calls it overfitting
        {"kind": "epoch", "epoch": epoch, "name": name, "value": value}
        for name, values in {"loss": [0.6, 0.2, 0.05, 0.01], "val_loss": [0.6, 0.7, 0.9, 1.2],
                             "accuracy": [0.7, 0.95, 0.99, 1.0], "val_accuracy": [0.6, 0.6, 0.58, 0.55]}.items()
        for epoch, value in enumerate(values, start=1)
    ])
    code, out, err = run_cli(capsys, "fix", str(source), "overfitting", "--seeds", "2", "--wait", "--json")
    assert code == 0, err
    payload = json.loads(out)
    runs = [store.get_run(run_id) for pair in payload["pairs"] for run_id in pair]
    assert [run.status for run in runs] == [RunStatus.FINISHED] * 4, [run.error for run in runs]
    assert all(run.epochs_done == 1 and "accuracy" in run.test_metrics for run in runs)
    original, fixed = runs[0].config, runs[1].config
    assert (original.model.dropout_rate, original.training.augment) == (None, False)
    assert (fixed.model.dropout_rate, fixed.training.augment, fixed.training.early_stopping) == (0.2, True, True)
    report = payload["report"]
    assert report["metric"] == "test_accuracy" and report["complete_pairs"] == 2
    pairs = report["pairs"]
    assert [pair["original"] for pair in pairs] == [runs[0].test_metrics["accuracy"], runs[2].test_metrics["accuracy"]]
    difference = report["difference"]
    mean = sum(pair["fixed"] - pair["original"] for pair in pairs) / 2
    assert abs(difference["difference"] - mean) < 1e-9 and difference["paired"]
    assert difference["low"] is not None and difference["low"] <= mean <= difference["high"]
    assert report["verdict"] in ("helped", "hurt", "cannot be told apart")
    print(report["sentence"])


@pytest.mark.slow
def test_the_divergence_remedy_runs_the_real_range_test_and_takes_its_rate(store):
    from engine.doctor.findings import Finding, Severity
    from engine.remedies import prescribe

    config = tiny_config(epochs=1, learning_rate=0.9)
    finding = Finding(id="divergence", severity=Severity.PROBLEM, title="", suggestion="")
    fixed = prescribe(config, finding)  # engine.probe.find_learning_rate: `lr-find` in a subprocess
    (change,) = fixed.changes
    lr_run = store.get_run(fixed.range_test_run)
    assert lr_run.is_lr_find and lr_run.status == RunStatus.FINISHED
    assert change.field == "training.learning_rate" and 0 < change.new < 0.9
    print(change.reason)
