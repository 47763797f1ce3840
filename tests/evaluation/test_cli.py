"""``evaluate`` command: engine.evaluation.cli.add_parser / cmd_evaluate."""

from __future__ import annotations

import argparse
import json

import pytest

from engine.evaluation import EvaluationError, cli
from engine.store import open_store
from tests.fake_runs import predictions_run


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_text_report(lab_home, capsys):
    run_id = predictions_run(open_store(), num_classes=2, val_size=40, epochs=3)
    args = parse(["evaluate", str(run_id), "--epoch", "2", "--threshold", "0.3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}, validation split, epoch 2: 40 samples, threshold 0.3" in out
    assert "confusion matrix" in out and "specif." in out and "ROC AUC" in out and "Youden" in out


def test_json_report_for_best_test_split(lab_home, capsys):
    run_id = predictions_run(open_store(), num_classes=3, val_size=30, test_size=20, epochs=2)
    args = parse(["evaluate", str(run_id), "--best", "--split", "test", "--json"])
    assert cli.cmd_evaluate(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["epoch"] == 2 and report["num_samples"] == 20
    assert sum(map(sum, report["confusion_matrix"])) == 20
    assert len(report["per_class"]) == 3 and len(report["roc"]) == 3 and "x" in report["roc"][0]


def test_mistakes_raise_one_sentence(lab_home):
    run_id = predictions_run(open_store(), num_classes=3, epochs=2)
    with pytest.raises(EvaluationError, match="two-class runs only"):
        cli.cmd_evaluate(parse(["evaluate", str(run_id), "--threshold", "0.5"]))
    with pytest.raises(SystemExit):  # --epoch and --best together
        parse(["evaluate", "1", "--epoch", "1", "--best"])
