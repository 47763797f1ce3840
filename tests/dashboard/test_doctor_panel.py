"""The doctor on the Inspect page (findings panel) and the Runs page (a badge per run), through AppTest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.store import open_store
from tests.doctor.sick_runs import batchnorm_gap_run, collapsed_run, overfitting_run
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


def test_the_inspect_page_shows_consequences_under_their_root_cause(doctor_store):
    run_id = batchnorm_gap_run(doctor_store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "inspect.py"), default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    labels = [expander.label for expander in at.expander if "CONSEQUENCE" in expander.label
              or expander.label.startswith(("PROBLEM", "WARNING", "NOTE"))]
    assert labels[0].startswith("PROBLEM") and "BatchNorm" in labels[0]
    assert labels[1].startswith("CONSEQUENCE of batchnorm\\_gap") and "Collapse" in labels[1]
    overfitting = next(label for label in labels if "Overfitting" in label)
    assert "CONSEQUENCE of batchnorm" in overfitting
    assert any("1 problem · " in caption.value and "consequences of them" in caption.value for caption in at.caption)
    why = [m.value for m in at.markdown if m.value.startswith("**Why:**")]
    assert why and all("dropout" not in text for text in why)


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


def test_class_names_in_the_doctors_figures_are_plain_text():
    from engine.doctor import Finding, Severity

    finding = Finding(
        id="split_counts", severity=Severity.WARNING, title="t", suggestion="s",
        evidence={"split": "val", "counts": {"<b>bold</b> & [x](https://evil.example)": 3, "plain": 1}},
    )
    figure = doctor_ui.counts_figure(finding)
    assert list(figure.data[0].x) == ["&lt;b&gt;bold&lt;/b&gt; &amp; [x](https://evil.example)", "plain"]


def test_the_train_page_checks_the_dataset_and_applies_the_learning_rate_suggestion(app, monkeypatch):
    from engine import probe

    calls = []
    rates = list(np.geomspace(1e-6, 1.0, 30))

    def fake_lr_find(config):
        calls.append(config)
        return {"run_id": 7, "steps": 30, "batch_size": 32, "learning_rates": rates,
                "losses": [1.0] * 30, "smoothed": [1.0] * 30,
                "suggestion": {"suggested": 2.7e-3, "minimum": 3e-2, "steepest": 2.7e-3, "minimum_over_10": 3e-3}}

    monkeypatch.setattr(probe, "find_learning_rate", fake_lr_find)
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").set_value("shapes3d").run()
    at.button(key="train_doctor_check").click().run()
    assert not at.exception
    assert any("Intensity and foreground size" in e.label for e in at.expander)
    at.button(key="train_lr_find").click().run()
    assert calls and calls[0]["data"]["dataset"] == "shapes3d"
    assert at.session_state["train_learning_rate"] == 1e-3
    at.button(key="train_lr_use").click().run()
    assert at.session_state["train_learning_rate"] == pytest.approx(2e-3)
    assert not at.exception
