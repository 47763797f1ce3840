"""Sweeps from the command line: `sweep SPEC --wait --json`, `sweep status`, `sweep stop`; one real training sweep."""

from __future__ import annotations

import json
import subprocess

from engine.machine.devices import SLOTS_ENV
from engine.runs import RunStatus
from engine.store import open_store
from tests.jobs.helpers import tiny_config
from tests import fake_worker
from tests.cli_in_process import cli_result


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return cli_result(*args, timeout=timeout)  # in this process: no interpreter or TensorFlow start-up


def _write_spec(tmp_path, trials: int, epochs: int, **base_data):
    base = tiny_config(epochs=epochs).to_dict()
    base["data"].update(base_data)
    base["training"]["max_saliency_samples"] = 0
    spec = {
        "base": base, "method": "optuna", "trials": trials, "metric": "val_accuracy", "direction": "maximize",
        "space": {"training.learning_rate": {"low": 1e-5, "high": 0.3, "log": True},
                  "model.dropout_rate": {"low": 0.0, "high": 0.5}},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_six_trial_optuna_sweep_from_the_cli(jobs_lab, tmp_path, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.3")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    monkeypatch.setenv(SLOTS_ENV, "2")
    result = _cli("sweep", str(_write_spec(tmp_path, trials=6, epochs=4)), "--wait", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["done"] and report["trials_done"] == 6 and report["trials_pruned"] >= 1
    rows = json.loads(_cli("runs", "--json").stdout)
    assert len(rows) == sum(len(t["run_ids"]) for t in report["trials"])
    assert {row["group"] for row in rows} == {report["group"]}  # every trial is a run of the sweep's group
    assert {row["status"] for row in rows} <= {"finished", "pruned"}
    text = _cli("sweep", "status", str(report["id"])).stdout
    assert "best: trial" in text and "6/6 done" in text
    assert "sweep 1" in _cli("sweep", "status").stdout
    assert _cli("sweep", "status", "99").returncode == 2


def test_a_real_tiny_optuna_sweep_trains_on_the_slot(jobs_lab, tmp_path):
    """Three real trials (TensorFlow in each worker), the pruner consulted by the recorder each epoch."""
    spec = _write_spec(tmp_path, trials=3, epochs=2)
    result = _cli("sweep", str(spec), "--wait", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["trials_done"] == 3 and report["best"] is not None
    store = open_store()
    runs = store.list_runs(group=report["group"])
    assert len(runs) == 3 and all(run.status in (RunStatus.FINISHED, RunStatus.PRUNED) for run in runs)
    assert all(store.epoch_history(run.id) for run in runs)
    finished = [run for run in runs if run.status == RunStatus.FINISHED]
    assert finished and all(run.test_metrics for run in finished)
    assert 0.0 <= report["best"]["value"] <= 1.0
