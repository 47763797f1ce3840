"""The CLI contract: JSON outputs, one readable sentence (exit 2) for user mistakes, never a traceback."""

from __future__ import annotations

import json
import subprocess

from tests.cli_in_process import cli_result, run_cli


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return cli_result(*args, timeout=timeout)  # in this process: no interpreter or TensorFlow start-up


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


# ------------------------------------------------ more mistakes, in-process
def _one_sentence(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_a_run_id_too_large_for_sqlite_is_a_sentence(lab_home, capsys):
    for argv in (("show", "999999999999999999999"), ("evaluate", "999999999999999999999"),
                 ("resume", "-3"), ("evaluate", "1", "--epoch", "99999999999999999999")):
        code, _, err = run_cli(capsys, *argv)
        _one_sentence(code, err)
    assert "run id" in run_cli(capsys, "show", "999999999999999999999")[2]


def test_a_config_file_that_is_not_utf8_is_a_sentence(lab_home, tmp_path, capsys):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    code, _, err = run_cli(capsys, "launch", "--config", str(path))
    assert "not UTF-8" in _one_sentence(code, err) and str(path) in err


def test_describe_refuses_a_batch_size_below_one(capsys):
    for value in ("-1", "0", "x"):
        code, _, err = run_cli(capsys, "describe", "--batch-size", value)
        assert "--batch-size" in _one_sentence(code, err)


def test_argparse_usage_errors_are_one_sentence(capsys):
    for argv in ((), ("nope",), ("show",), ("archs", "--input-shape", "1", "2"), ("runs", "--bogus")):
        _one_sentence(*run_cli(capsys, *argv)[::2])


def test_archs_refuses_an_absurd_input_shape_before_building_anything(capsys):
    import time

    started = time.perf_counter()
    code, out, _ = run_cli(capsys, "archs", "--json", "--input-shape", "100000", "100000", "100000", "1")
    assert code == 0 and time.perf_counter() - started < 2.0
    rows = json.loads(out)
    assert all(row["params"] is None and "too large" in row["note"] for row in rows)
    code, _, err = run_cli(capsys, "describe", "--input-shape", "100000", "100000", "100000", "1")
    assert "too large for tutorial3d" in _one_sentence(code, err)


def test_transfer_mistakes_on_train_are_one_sentence(lab_home, capsys):
    code, _, err = run_cli(capsys, "train", "--dataset", "shapes3d", "--init-from", "run:99")
    assert code == 2 and "run #99, which does not exist" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "train", "--dataset", "shapes3d", "--freeze-blocks", "1")
    assert code == 2 and "set training.init_from" in err
    code, _, err = run_cli(capsys, "train", "--dataset", "shapes3d", "--init-from", "notes.txt")
    assert code == 2 and "give a .keras or .h5 weights file" in err
