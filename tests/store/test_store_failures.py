"""A database that cannot be opened, read or written is one sentence (exit 2), never a traceback.

The cases of the hardening issue: a truncated or overwritten ``lab.db``, a URL
SQLAlchemy cannot load, an unreachable Postgres server (a closed port on the
loopback), a workspace path that is a file, and a run id too large for SQLite.
"""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.errors import RunNotFound, StoreError
from engine.store import open_store
from tests.cli_in_process import run_cli

COMMANDS = (("runs",), ("show", "1"), ("launch", "--dataset", "shapes3d"), ("evaluate", "1"))
CLOSED_PORT_URL = "postgresql+psycopg2://lab:secret@127.0.0.1:1/lab"


def _main(capsys, *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *argv)
    assert "Traceback" not in out + err
    return code, err


def _sentence_for_each_command(capsys) -> str:
    errors = set()
    for argv in COMMANDS:
        code, err = _main(capsys, *argv)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (argv, code, err)
        errors.add(err)
    assert len(errors) == 1, errors  # the same sentence whichever command met it
    return errors.pop()


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(data[:3000] if how == "truncate" else b"not a database at all" * 200)


@pytest.mark.parametrize("how", ["truncate", "overwrite"])
def test_a_damaged_sqlite_file_is_a_sentence_naming_it(lab_home, capsys, how):
    store = open_store()
    store.create_run(RunConfig())
    store.engine.dispose()
    _damage(lab_home / "lab.db", how)
    from engine.store import sql

    sql._ENGINES.clear()
    err = _sentence_for_each_command(capsys)
    assert str(lab_home / "lab.db") in err and "damaged" in err


def test_a_url_sqlalchemy_cannot_load_is_a_sentence(lab_home, capsys, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DB", "bogus://")
    err = _sentence_for_each_command(capsys)
    assert "'bogus://'" in err and "CONV3D_LAB_DB" in err


def test_an_unreachable_postgres_server_is_a_sentence_without_the_password(lab_home, capsys, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DB", CLOSED_PORT_URL)
    err = _sentence_for_each_command(capsys)
    assert "127.0.0.1:1" in err and "secret" not in err and "server" in err


def test_a_workspace_that_is_a_file_is_a_sentence(tmp_path, capsys, monkeypatch):
    home = tmp_path / "a-file"
    home.write_text("")
    monkeypatch.setenv("CONV3D_LAB_HOME", str(home))
    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("CONV3D_LAB_DB", raising=False)
    err = _sentence_for_each_command(capsys)
    assert str(home) in err and "CONV3D_LAB_HOME" in err and "not a folder" in err


def test_a_database_damaged_after_opening_fails_reads_and_writes_with_a_store_error(lab_home):
    store = open_store()
    run_id = store.create_run(RunConfig())
    store.engine.dispose()
    _damage(lab_home / "lab.db", "overwrite")
    with pytest.raises(StoreError, match="damaged"):
        store.get_run(run_id)
    with pytest.raises(StoreError, match="damaged"):
        store.log_event(run_id, "hello")


def test_a_run_id_beyond_sqlite_integers_is_not_found(lab_home):
    store = open_store()
    with pytest.raises(RunNotFound):
        store.get_run(10**21)
    assert store.list_runs(ids=[10**21, -5]) == []
