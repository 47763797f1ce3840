"""Issue 27's Done-when for shared storage: a run trained by a real worker with its files under a
non-default fsspec root (CONV3D_LAB_ARTIFACTS=file://...) is shown on Inspect by a dashboard that
shares nothing with the trainer but the database URL and the artefact root.

The trainer's workspace (CONV3D_LAB_HOME, CONV3D_LAB_DATA) is deleted before the dashboard looks, so
the confusion matrix, the per-sample predictions and the Grad-CAM overlay can only come from the
store and the root. Worker tier (tests/tiers.py): a real TensorFlow training in a worker process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from engine import jobs, paths
from engine.runs import RunStatus
from engine.store import artefacts, open_store
from tests.jobs.helpers import WORKER_TIMEOUT_S, lab_processes, tiny_config, wait_ended, wait_for

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "inspect.py")


def test_a_dashboard_on_another_workspace_inspects_a_run_from_the_artefact_root(jobs_lab, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    database = f"sqlite:///{tmp_path / 'database' / 'lab.db'}"
    (tmp_path / "database").mkdir()
    monkeypatch.setenv("CONV3D_LAB_DB", database)
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, shared.as_uri())

    # The trainer: the jobs launch path starts a detached worker on workspace A (jobs_lab).
    run_id = jobs.launch(tiny_config(epochs=2, max_saliency_samples=8))
    run = wait_ended(open_store(), run_id, WORKER_TIMEOUT_S)
    assert run.status == RunStatus.FINISHED, run.error
    wait_for(lambda: not lab_processes(jobs_lab), 30, "the worker to hand over and exit")
    published = shared / "runs" / f"run-{run_id:05d}"
    assert (published / "saliency.npz").is_file() and (published / "best.keras").is_file()
    shutil.rmtree(jobs_lab)  # nothing of the trainer's workspace is left for the dashboard
    shutil.rmtree(tmp_path / "data-cache", ignore_errors=True)

    # The dashboard: another workspace and data folder; only the database URL and the root are shared.
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "dashboard"))
    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "dashboard-data"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception, at.exception
    assert not at.warning, [warning.value for warning in at.warning]  # the files are not "gone"
    keys = {chart.key for chart in at.get("plotly_chart")}
    assert {"inspect_val_cm", "inspect_test_cm"} <= keys  # the confusion matrices
    test_size = run.split_sizes["test"]
    at.radio(key="inspect_sample_split").set_value(at.radio(key="inspect_sample_split").options[1]).run()
    assert at.dataframe[-1].value.shape[0] == test_size  # per-sample predictions of the test split
    overlay = at.checkbox(key="inspect_overlay")
    assert overlay.value and not overlay.disabled, overlay.help  # the Grad-CAM map, fetched from the root
    assert "inspect_slices" in {chart.key for chart in at.get("plotly_chart")}
    fetched = paths.run_dir(run_id, create=False)
    assert fetched.parent == tmp_path / "dashboard" and (fetched / "saliency.npz").is_file()
    assert [download.disabled for download in at.get("download_button")][0] is False  # best.keras offered
