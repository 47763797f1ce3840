"""Hourly SQLite backups (online backup API, last five kept) and ``doctor --store``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

from engine import paths
from engine.config import RunConfig
from engine.store import backup, open_store, sql
from tests.cli_in_process import run_cli


def _runs_in(path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0]


def test_opening_the_store_backs_it_up_at_most_once_an_hour_keeping_five(lab_home):
    database = lab_home / "lab.db"
    store = open_store()
    store.create_run(RunConfig())
    first = backup.list_backups(database)
    assert len(first) == 1 and first[0].parent == lab_home / "backups" and first[0].name.startswith("lab-")
    open_store().create_run(RunConfig())
    assert backup.list_backups(database) == first  # within the hour: no new copy
    now = time.time()
    for hour in range(1, 8):
        assert backup.maybe_backup(database, now=now + hour * 3601) is not None
    kept = backup.list_backups(database)
    assert len(kept) == backup.KEEP_BACKUPS and first[0] not in kept
    assert _runs_in(kept[-1]) == 2  # a consistent copy, WAL included
    assert not [p for p in (lab_home / "backups").iterdir() if p.name.endswith(".partial")]


def test_a_damaged_database_names_its_newest_backup_and_restoring_it_works(lab_home, capsys):
    database = lab_home / "lab.db"
    store = open_store()
    run_id = store.create_run(RunConfig(name="kept"))
    store.engine.dispose()
    newest = backup.maybe_backup(database, now=time.time() + 3601)
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    database.write_bytes(database.read_bytes()[:3000])
    sql._ENGINES.clear()

    code, _, err = run_cli(capsys, "runs")
    assert code == 2 and f"restore the newest backup, {newest}" in err and f"copy the backup to {database}" in err

    code, out, _ = run_cli(capsys, "doctor", "--store")
    assert code == 1 and "integrity: DAMAGED" in out and str(newest) in out

    shutil.copy(newest, database)  # what the sentence says to do
    sql._ENGINES.clear()
    assert open_store().get_run(run_id).name == "kept"
    code, out, _ = run_cli(capsys, "doctor", "--store")
    assert code == 0 and "integrity: ok" in out and out.strip().endswith("healthy")


def test_doctor_reports_runs_whose_folder_is_missing(lab_home, capsys):
    store = open_store()
    with_epochs, gone, queued = (store.create_run(RunConfig()) for _ in range(3))
    for run_id in (with_epochs, gone):
        store.update_run(run_id, epochs_done=2)
        paths.run_dir(run_id)
    shutil.rmtree(paths.run_dir(gone))
    code, out, _ = run_cli(capsys, "doctor", "--store", "--json")
    report = json.loads(out)
    assert code == 1 and report["missing_folders"] == [gone] and report["integrity"] == ["ok"]
    assert report["runs"] == 3 and not report["healthy"]
    code, out, _ = run_cli(capsys, "doctor", "--store")
    assert f"folders missing for 1 run(s) with recorded epochs: {gone}" in out


def test_doctor_needs_to_be_told_what_to_check(lab_home, capsys):
    code, _, err = run_cli(capsys, "doctor")
    assert code == 2 and "--store" in err and err.count("\n") == 1
