"""A database the lab cannot use shows the engine's sentence on the page, not Streamlit's redacted error."""

from __future__ import annotations

from ui.text import unescape_markdown


def test_runs_page_with_a_bogus_database_url_shows_the_sentence(app, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DB", "bogus://")
    at = app("app_pages/runs.py")
    assert not at.exception, [e.value for e in at.exception]
    errors = [unescape_markdown(element.value) for element in at.error]
    assert any("The database URL 'bogus://' cannot be used" in text and "CONV3D_LAB_DB" in text for text in errors), errors


def test_home_page_with_a_damaged_database_names_the_file(app, lab_home, monkeypatch):
    from engine.store import sql

    database = lab_home / "lab.db"
    for engine in sql._ENGINES.values():
        engine.dispose()
    sql._ENGINES.clear()
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    database.write_bytes(b"not a database" * 500)
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    errors = [unescape_markdown(element.value) for element in at.error]
    assert any(str(database) in text and "damaged" in text for text in errors), errors
