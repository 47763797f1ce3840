"""``python -m engine doctor RUN`` and ``doctor --dataset NAME`` (in-process, text and JSON)."""

from __future__ import annotations

import json

import numpy as np

from engine.cli import main
from engine.store import open_store
from tests.fake_runs import predictions_run


def _collapsed_run(store) -> int:
    run_id = predictions_run(store, num_classes=2, val_size=40, test_size=20, epochs=3)
    labels = np.array([0] * 24 + [1] * 16)
    for epoch in (1, 2, 3):
        store.save_predictions(run_id, epoch, "val", np.arange(40), labels, np.tile([[0.9, 0.1]], (40, 1)))
    return run_id


def test_doctor_run_json_lists_the_collapse_with_its_evidence(lab_home, capsys):
    run_id = _collapsed_run(open_store())
    assert main(["doctor", str(run_id), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    collapse = next(f for f in report["findings"] if f["id"] == "collapse")
    assert collapse["severity"] == "problem" and collapse["evidence"]["collapsed_epochs"] == [1, 2, 3]
    assert report["findings"][0]["severity"] == "problem"  # problems first

    assert main(["doctor", str(run_id)]) == 0
    text = capsys.readouterr().out
    assert "PROBLEM  collapse (epoch 3)" in text and "-> " in text


def test_doctor_dataset_checks_before_training(lab_home, capsys, monkeypatch, tmp_path):
    args = ["doctor", "--dataset", "shapes3d", "--option", "num_samples=32", "--option", "size=8", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["subject"] == "dataset shapes3d"
    assert {f["id"] for f in report["findings"]} >= {"intensity_by_class"}


def test_doctor_without_a_run_or_a_dataset_says_what_to_name(lab_home, capsys):
    assert main(["doctor"]) == 2
    assert "Name a run" in capsys.readouterr().err


def test_doctor_run_prints_consequences_under_their_root_cause(lab_home, capsys):
    from tests.doctor.sick_runs import batchnorm_gap_run

    run_id = batchnorm_gap_run(open_store())
    assert main(["doctor", str(run_id), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ids = [(f["id"], f["caused_by"]) for f in report["findings"]]
    assert ids[0] == ("batchnorm_gap", None)
    assert ("collapse", "batchnorm_gap") in ids and ("overfitting", "batchnorm_gap") in ids
    assert main(["doctor", str(run_id)]) == 0
    text = capsys.readouterr().out
    assert "1 problem(s)" in text and "consequence(s) of them" in text
    assert "  <- consequence of batchnorm_gap: problem overfitting (epoch 3)" in text
    assert text.index("PROBLEM  batchnorm_gap") < text.index("<- consequence of batchnorm_gap")
