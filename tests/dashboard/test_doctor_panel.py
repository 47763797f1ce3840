"""The doctor on the Inspect page (findings panel) and the Runs page (a badge per run), through AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.store import open_store
from tests.doctor.sick_runs import collapsed_run, overfitting_run
from ui import doctor as doctor_ui

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def doctor_store(lab_home):
    import streamlit as st

    st.cache_data.clear()
    return open_store()


def test_the_inspect_page_shows_the_findings_with_their_charts(doctor_store):
    run_id = overfitting_run(doctor_store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "inspect.py"), default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    labels = [expander.label for expander in at.expander]
    overfit = next(label for label in labels if "Overfitting" in label)
    assert "epoch 3" in overfit and overfit.startswith("PROBLEM")
    assert any(label.startswith("NOTE") and "chance" not in label for label in labels)
    keys = [chart.proto.id for chart in at.get("plotly_chart")]
    assert keys  # the evidence charts are drawn


def test_the_runs_page_badges_each_selected_run_with_its_problem_count(doctor_store):
    collapsed = collapsed_run(doctor_store)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py")
    at.query_params["runs"] = str(collapsed)
    at.run()
    assert not at.exception
    badges = [str(element.value) for element in at.markdown]
    assert any("doctor: 1 problem" in body for body in badges), badges


def test_user_text_is_escaped_for_markdown_and_plotly():
    assert doctor_ui.escape_markdown("lesion_[T2] *x*") == r"lesion\_\[T2\] \*x\*"
    assert doctor_ui.escape_plotly("<b>a & b</b>") == "&lt;b&gt;a &amp; b&lt;/b&gt;"
