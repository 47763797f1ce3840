"""Looking at a run whose folder was deleted does not re-create it; Inspect says its files are gone."""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine import paths
from tests.fake_runs import predictions_run
from ui.text import unescape_markdown

INSPECT_PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "inspect.py")


def _texts(at) -> str:
    return "\n".join(unescape_markdown(str(e.value)) for kind in ("info", "warning", "error", "caption")
                     for e in getattr(at, kind))


def test_inspect_of_a_run_without_its_folder_says_the_files_are_gone(store):
    import streamlit as st

    st.cache_resource.clear()
    run_id = predictions_run(store, num_classes=2, val_size=20, test_size=10, epochs=2)
    (paths.run_dir(run_id) / "best.keras").write_bytes(b"model")
    shutil.rmtree(paths.run_dir(run_id))
    at = AppTest.from_file(INSPECT_PAGE, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not paths.run_dir(run_id, create=False).exists(), "opening Inspect re-created the run folder"
    assert f"files of run #{run_id} are gone" in _texts(at)
    assert "inspect_download_model" not in [button.key for button in at.get("download_button")]
    assert at.get("plotly_chart")  # the stored predictions are still shown


def test_runs_page_of_a_run_without_its_folder_does_not_create_it(app, make_run):
    run_id = make_run("failed", epochs_done=1, error="It broke.")
    shutil.rmtree(paths.run_dir(run_id), ignore_errors=True)
    at = app("app_pages/runs.py", runs=str(run_id))
    assert not at.exception
    assert not paths.run_dir(run_id, create=False).exists()


def test_inspect_does_not_offer_a_checkpoint_that_would_not_load(store):
    """A kill while best.keras was written in place left 0 bytes behind; the download must not offer it."""
    import streamlit as st

    st.cache_resource.clear()
    run_id = predictions_run(store, num_classes=2, val_size=20, test_size=10, epochs=2)
    (paths.run_dir(run_id) / "best.keras").write_bytes(b"")
    at = AppTest.from_file(INSPECT_PAGE, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    download = next(button for button in at.get("download_button") if button.key == "inspect_download_model")
    assert download.proto.disabled and "is empty" in download.proto.help
