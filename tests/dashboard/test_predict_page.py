"""The Predict page (app_pages/predict.py) through AppTest: its guard, the model list, the pinned demo model,
user strings shown as text. The prediction itself runs in a subprocess (tests/e2e/test_e2e_predict.py drives it)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.store import open_store
from tests.fake_runs import fake_run
from ui.text import unescape_markdown

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "predict.py")
TIMEOUT_S = 60


def test_without_a_finished_run_the_page_says_what_to_do(lab_home):
    fake_run(open_store(), "running", epochs_done=1)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert "No run has finished yet" in at.info[0].value


def test_finished_runs_are_offered_and_a_name_stays_text(lab_home):
    store = open_store()
    first = fake_run(store, "finished", epochs_done=2, name="**bold** [link](http://x.example)")
    second = fake_run(store, "finished", epochs_done=2, name="plain")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    box = at.selectbox(key="predict_model")
    assert box.options[0].startswith(f"#{second}") and any("**bold** [link]" in o for o in box.options)
    assert at.button(key="predict_run").disabled  # nothing uploaded yet
    assert "No test-time views" in at.caption[0].value  # fake runs train without augmentation
    assert first != second


def test_a_pinned_demo_model_is_the_only_choice(lab_home, monkeypatch):
    store = open_store()
    pinned = fake_run(store, "finished", epochs_done=2, name="the <b>model</b>")
    fake_run(store, "finished", epochs_done=2, name="other")
    monkeypatch.setenv("CONV3D_LAB_DEMO_MODEL", str(pinned))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert not at.selectbox  # no picker: the pinned model only
    assert "\\<b\\>" in at.caption[0].value  # escaped: drawn as the characters, not as bold
    caption = unescape_markdown(at.caption[0].value)
    assert caption.startswith("The model to try:") and f"#{pinned}" in caption and "the <b>model</b>" in caption
