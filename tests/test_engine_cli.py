"""The CLI contract: JSON outputs, one readable sentence (exit 2) for user mistakes, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from engine import paths


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=paths.REPO_ROOT, env=dict(os.environ),
        capture_output=True, text=True, timeout=timeout,
    )


def test_datasets_and_archs_list_as_json(lab_home):
    result = _cli("datasets", "--json")
    assert result.returncode == 0, result.stderr
    assert [d["name"] for d in json.loads(result.stdout)] == ["digits3d", "phantom_lesions", "shapes3d"]
    result = _cli("archs", "--json", "--input-shape", "128", "128", "64", "1", "--classes", "2")
    assert result.returncode == 0, result.stderr
    params = {row["name"]: row["params"] for row in json.loads(result.stdout)}
    assert params["kerasio3d"] == 1_352_897


def test_train_runs_and_show_report_the_run(lab_home):
    result = _cli(
        "train", "--dataset", "shapes3d", "--option", "num_samples=32", "--option", "size=12",
        "--arch", "tutorial3d", "--width", "0.25", "--epochs", "2", "--batch-size", "8", "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs_done"] == 2
    assert summary["best"]["monitor"] == "val_loss" and summary["best"]["epoch"] in (1, 2)
    assert set(summary["test"]) >= {"loss", "accuracy", "auc"}

    runs = json.loads(_cli("runs", "--json").stdout)
    assert [run["id"] for run in runs] == [summary["run_id"]] and runs[0]["status"] == "finished"
    shown = json.loads(_cli("show", str(summary["run_id"]), "--json").stdout)
    assert shown["status"] == "finished" and len(shown["history"]) == 2
    assert shown["config"]["data"]["options"] == {"num_samples": 32, "size": 12}
    assert shown["test_metrics"]["accuracy"] == summary["test"]["accuracy"]


def test_user_mistakes_get_one_sentence_and_exit_2(lab_home):
    for args, expected in [
        (("train", "--dataset", "nope", "--lr", "3"), "valid datasets are digits3d, phantom_lesions, shapes3d"),
        (("train", "--arch", "unet"), "valid architectures are kerasio3d"),
        (("train", "--option", "size"), "must look like KEY=VALUE"),
        (("show", "999"), "999"),
        (("train", "--config", "/nonexistent.json"), "Cannot read the config file"),
    ]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (lab_home / "lab.db").exists() or json.loads(_cli("runs", "--json").stdout) == []
