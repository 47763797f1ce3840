"""The compare, tag, note, archive, delete and runs --archived commands (synthetic runs, no training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine import paths
from engine.cli import main
from tests.cli_in_process import run_cli
from tests.fake_runs import compare_run, fake_run, synthetic_config
from engine.runs import RunStatus
from engine.store import open_store


@pytest.fixture
def run_ids(lab_home):
    store = open_store()
    return [compare_run(store, synthetic_config(index, 12), seed=index) for index in range(4)]


def _run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compare_prints_the_summary_and_the_config_differences(run_ids, capsys):
    code, out, err = _run(capsys, "compare", *run_ids)
    assert code == 0, err
    assert "val_accuracy at each run's best epoch" in out
    assert "Config differences:" in out and "model.architecture" in out and "training.seed" in out
    for run_id in run_ids:
        assert f"#{run_id} synthetic-" in out


def test_compare_json_groups_with_mean_and_std(run_ids, capsys):
    code, out, err = _run(capsys, "compare", *run_ids, "--group-by", "model.architecture", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["result_metric"] == "val_accuracy" and report["at"] == "best"
    assert [row["runs"] for row in report["summary"]] == [2, 2]
    store = open_store()
    members = [run_ids[0], run_ids[2]]  # compact3d
    best = [max(r["val_accuracy"] for r in store.epoch_history(i)) for i in members]
    assert report["summary"][0]["val_accuracy @ best"] == pytest.approx(np.mean(best))
    assert report["summary"][0]["val_accuracy @ best std"] == pytest.approx(np.std(best, ddof=1))  # sample std
    assert 0 <= report["summary"][0]["val_accuracy @ best low"] <= report["summary"][0]["val_accuracy @ best high"] <= 1
    assert report["config_differences"]["model.architecture"] == {
        str(run_ids[0]): "compact3d", str(run_ids[1]): "kerasio3d", str(run_ids[2]): "compact3d",
        str(run_ids[3]): "kerasio3d"}


@pytest.mark.parametrize("argv, sentence", [
    (("compare", 1), "at least two runs"),
    (("compare", 1, 99), "no run with id 99"),
    (("compare", 1, 2, "--group-by", "training.nope"), "not a config field"),
    (("compare", 1, 2, "--metric", "val_nope"), "No run here recorded 'val_nope'"),
    (("tag", 99, "x"), "no run with id 99"),
])
def test_user_mistakes_exit_2_with_one_sentence(run_ids, capsys, argv, sentence):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and sentence in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_tag_note_archive_and_runs_archived(run_ids, capsys):
    first = run_ids[0]
    assert _run(capsys, "tag", first, "baseline", "lr-sweep")[1].strip() == f"run {first} tags: baseline, lr-sweep"
    assert _run(capsys, "tag", first, "--remove", "lr-sweep")[1].strip() == f"run {first} tags: baseline"
    assert _run(capsys, "note", first, "looks overfit after epoch 10")[0] == 0
    assert _run(capsys, "archive", first)[0] == 0
    run = open_store().get_run(first)
    assert (run.tags, run.notes, run.archived) == (("baseline",), "looks overfit after epoch 10", True)
    listed = [row["id"] for row in json.loads(_run(capsys, "runs", "--json")[1])]
    assert first not in listed and len(listed) == 3
    everything = json.loads(_run(capsys, "runs", "--json", "--archived")[1])
    assert first in [row["id"] for row in everything]
    assert "[archived]" in _run(capsys, "runs", "--archived")[1]
    assert _run(capsys, "archive", first, "--undo")[0] == 0
    assert not open_store().get_run(first).archived


def test_delete_asks_for_yes_without_a_terminal_and_refuses_active_runs(run_ids, lab_home):
    env = dict(os.environ)
    command = [sys.executable, "-m", "engine", "delete", str(run_ids[0])]
    result = subprocess.run(command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 2 and "add --yes" in result.stderr
    assert open_store().get_run(run_ids[0])
    result = subprocess.run([*command, "--yes"], cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr
    assert run_ids[0] not in [run.id for run in open_store().list_runs()]
    # A running run (on another host with a fresh heartbeat, so reconcile leaves it; no run is queued,
    # so no worker starts).
    store = open_store()
    running = fake_run(store, RunStatus.RUNNING, config=synthetic_config(9, 3))
    result = subprocess.run([sys.executable, "-m", "engine", "delete", str(running), "--yes"], cwd=paths.REPO_ROOT,
                            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 2 and "is running; stop it first" in result.stderr
    assert store.get_run(running).status == RunStatus.RUNNING


BENCH_TOOL = paths.REPO_ROOT / "tools" / "bench_compare_page.py"


@pytest.mark.worker  # a fresh interpreter that imports Streamlit and renders the page seven times
def test_the_compare_page_benchmark_prints_its_figures_under_stable_keys(lab_home):
    result = subprocess.run([sys.executable, str(BENCH_TOOL), "--runs", "20", "--epochs", "2", "--json"],
                            cwd=paths.REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"compare_seconds", "table_seconds", "runs", "epochs", "selected"} <= set(figures)
    assert figures["runs"] == figures["selected"] == 20 and 0 < figures["compare_seconds"] < 60
    assert open_store().list_runs() == []  # the bench used a temporary store, not the lab's


def test_the_compare_page_benchmark_needs_twenty_runs():
    result = subprocess.run([sys.executable, str(BENCH_TOOL), "--runs", "5"], cwd=paths.REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--runs 20 or more" in result.stderr


def test_the_engine_no_longer_has_a_compare_benchmark(capsys):
    code, _, err = run_cli(capsys, "bench", "compare")
    assert code == 2 and "invalid choice: 'compare'" in err
