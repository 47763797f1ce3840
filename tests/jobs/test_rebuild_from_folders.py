"""A lost or damaged database loses no finished run: a backup is taken when a run ends, its folder holds
run.json and metrics.jsonl, and ``doctor --store --rebuild`` recovers it from there.

The workers are the real ones under the fake-worker hook with a made-up curve (no TensorFlow): the
claim, the recording, the end-of-run backup and folder copy are the production paths.
"""

from __future__ import annotations

import json
import shutil

from engine import jobs, paths
from engine.runs import RunStatus
from engine.store import backup, journal, open_store, sql
from tests.cli_in_process import run_cli
from tests.jobs.helpers import tiny_config, wait_ended, wait_for, lab_processes
from tests import fake_worker


def _finished_run(jobs_lab, monkeypatch, epochs: int = 3) -> tuple[int, list]:
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.6")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    config = tiny_config(epochs=epochs)
    config.name = "worth keeping"
    run_id = jobs.launch(config, owner="visitor-a")
    store = open_store()
    assert wait_ended(store, run_id, 60).status == RunStatus.FINISHED
    wait_for(lambda: not lab_processes(jobs_lab), 30, "the worker to exit")
    return run_id, store.epoch_history(run_id)


def _close_store() -> None:
    for url in list(sql._ENGINES):
        sql.forget_engine(url)


def _lose_database(lab_home) -> None:
    _close_store()
    for suffix in ("", "-wal", "-shm"):
        (lab_home / f"lab.db{suffix}").unlink(missing_ok=True)


def test_the_run_folder_holds_the_record_and_the_curves(jobs_lab, monkeypatch):
    run_id, history = _finished_run(jobs_lab, monkeypatch)
    found = journal.read(paths.run_dir(run_id, create=False))
    assert found.fields["status"] == "finished" and found.fields["epochs_done"] == 3
    assert found.fields["owner"] == "visitor-a" and found.fields["config"]["name"] == "worth keeping"
    assert sorted({row["epoch"] for row in found.metrics}) == [1, 2, 3]
    assert {row["name"] for row in found.metrics} >= {"val_loss", "val_accuracy"}


def test_a_backup_is_taken_when_a_run_ends_and_holds_it(jobs_lab, monkeypatch):
    run_id, _ = _finished_run(jobs_lab, monkeypatch)
    newest = backup.newest_backup(jobs_lab / "lab.db")
    assert backup.runs_in(newest) == 1
    with __import__("sqlite3").connect(newest) as connection:
        assert connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "finished"


def test_a_deleted_database_without_backups_is_rebuilt_from_the_run_folders(jobs_lab, monkeypatch, capsys):
    run_id, history = _finished_run(jobs_lab, monkeypatch)
    before = open_store().get_run(run_id)
    _lose_database(jobs_lab)
    shutil.rmtree(jobs_lab / backup.BACKUP_DIR_NAME)

    code, out, err = run_cli(capsys, "doctor", "--store", "--rebuild")
    assert code == 0, err
    assert f"recovered from their run folders: {run_id}" in out and "runs: 1" in out
    store = open_store()
    after = store.get_run(run_id)
    assert (after.status, after.epochs_done, after.name, after.owner) == (RunStatus.FINISHED, 3, "worth keeping",
                                                                          "visitor-a")
    assert (after.best_value, after.best_epoch, after.config) == (before.best_value, before.best_epoch, before.config)
    assert store.epoch_history(run_id) == history
    # The next launch gets a new id, not the recovered one.
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.1")
    assert jobs.launch(tiny_config(epochs=1)) == run_id + 1
    wait_ended(store, run_id + 1, 60)


def test_a_damaged_database_names_its_backup_and_the_rebuild_recovers_what_the_backup_lacks(
        jobs_lab, monkeypatch, capsys):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.3")
    first, _ = _finished_run(jobs_lab, monkeypatch, epochs=1)
    database = jobs_lab / "lab.db"
    early = backup.newest_backup(database)
    assert backup.runs_in(early) == 1
    second, history = _finished_run(jobs_lab, monkeypatch, epochs=2)
    # The backup taken after the second run is lost too: the newest left holds only the first run.
    for path in backup.list_backups(database):
        if path != early:
            path.unlink()
    _close_store()
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    database.write_bytes(database.read_bytes()[:3000])

    code, _, err = run_cli(capsys, "runs")
    taken = backup.backup_time(early)
    assert code == 2 and f"{early} (taken {taken:%Y-%m-%d %H:%M:%S}, holding 1 run(s); 2 run folder(s) are present)" \
        in err, err
    assert "doctor --store --rebuild" in err and "Traceback" not in err

    code, out, err = run_cli(capsys, "doctor", "--store", "--rebuild", "--json")
    report = json.loads(out)
    assert code == 0 and report["restored_backup"] == str(early) and report["recovered"] == [second], report
    assert report["moved_aside"] and report["runs"] == 2
    store = open_store()
    assert [run.status for run in store.list_runs()] == [RunStatus.FINISHED] * 2
    assert store.epoch_history(second) == history
    code, out, _ = run_cli(capsys, "doctor", "--store")
    assert code == 0 and out.strip().endswith("healthy")


def test_a_trained_run_is_rebuilt_with_its_curves_and_test_metrics(jobs_lab, tmp_path, capsys):
    """A real (tiny) training through ``python -m engine train``: the recorder's per-epoch folder copy
    and the end-of-run copy hold what the store held."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    config_path = tmp_path / "config.json"
    config_path.write_text(tiny_config(epochs=2).to_json())
    done = subprocess.run([sys.executable, "-m", "engine", "train", "--config", str(config_path), "--json"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = json.loads(done.stdout.strip().splitlines()[-1])["run_id"]
    store = open_store()
    before, history = store.get_run(run_id), store.epoch_history(run_id)
    assert before.status == RunStatus.FINISHED and before.test_metrics
    folder = paths.run_dir(run_id, create=False)
    assert {"run.json", "metrics.jsonl", "splits.json", "best.keras", "last.keras"} <= {p.name for p in folder.iterdir()}
    _lose_database(jobs_lab)
    shutil.rmtree(jobs_lab / backup.BACKUP_DIR_NAME)
    code, out, err = run_cli(capsys, "doctor", "--store", "--rebuild")
    assert code == 0 and f"recovered from their run folders: {run_id}" in out, err
    after = open_store().get_run(run_id)
    assert (after.status, after.epochs_done, after.test_metrics) == (RunStatus.FINISHED, 2, before.test_metrics)
    assert (after.class_names, after.split_sizes, after.num_params) == (before.class_names, before.split_sizes,
                                                                         before.num_params)
    assert open_store().epoch_history(run_id) == history
    assert {row["kind"] for row in open_store().get_metrics(run_id)} == {"epoch", "test"}
