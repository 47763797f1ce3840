"""One real paired fix end to end: `python -m engine fix RUN overfitting --seeds 2 --wait` trains the original
and the fixed tiny config in real workers (TensorFlow), and the report pairs their test accuracies."""

from __future__ import annotations

import json

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
