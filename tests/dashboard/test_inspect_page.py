"""The Inspect page (app_pages/inspect.py) driven through AppTest over runs with synthetic stored predictions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import evaluation, paths
from engine.runs import RunStatus
from engine.store import open_store
from tests.fake_runs import predictions_run
from ui.text import unescape_markdown

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "inspect.py")
TIMEOUT_S = 60
# The target for a redraw after moving a slider is 0.5 s; the assertion
# is generous because the test machine's two cores are shared.
REDRAW_TARGET_S = 0.5
REDRAW_LIMIT_S = 2.0


@pytest.fixture
def inspect_store(lab_home):
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    return open_store()


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)


def samples_table(at: AppTest):
    """The per-sample table (the page's last dataframe; dataframes expose no key in AppTest)."""
    return at.dataframe[-1].value


def write_saliency(run_id: int, sample_ids: np.ndarray, edge: int = 8) -> None:
    """A saliency.npz as the worker writes it (no TensorFlow needed)."""
    maps = np.zeros((len(sample_ids), edge, edge, edge), np.float16)
    maps[:, :, :, : edge // 2] = 1.0
    np.savez_compressed(
        paths.run_dir(run_id) / "saliency.npz", maps=maps, sample_ids=np.asarray(sample_ids),
        target_classes=np.zeros(len(sample_ids), np.int64), volume_shape=np.array([edge] * 3),
        feature_shape=np.array([2, 2, 2]), layer=np.asarray("block2_conv"), method=np.asarray("hirescam"),
    )


def test_empty_store_shows_a_hint(inspect_store):
    at = page().run()
    assert not at.exception
    assert "No run has finished an epoch" in at.info[0].value


def test_run_without_epochs_shows_a_hint(inspect_store):
    predictions_run(inspect_store, num_classes=2, epochs=2)
    from engine.config import RunConfig

    inspect_store.create_run(RunConfig(), status=RunStatus.RUNNING)  # no epoch yet: not listed
    at = page()
    at.query_params["run"] = "2"
    at.run()
    assert not at.exception
    assert at.selectbox(key="inspect_run").value == 1


def test_a_lesion_normal_run_says_lesion_is_positive(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, val_size=40, test_size=30, epochs=2,
                      class_names=["lesion", "normal"], positive_class="lesion")
    at = page()
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    assert unescape_markdown(at.caption[0].value).endswith("positive class: lesion")
    assert at.slider(key="inspect_threshold").label == "Decision threshold on P(lesion)"
    labels = [metric.label for metric in at.metric]
    assert "Sensitivity (lesion)" in labels and "Specificity (lesion)" in labels
    result = evaluation.evaluate_run(inspect_store, run_id, "val", 2, threshold=0.5)
    shown = next(metric.value for metric in at.metric if metric.label == "Sensitivity (lesion)")
    assert float(shown) == pytest.approx(result.per_class[0]["recall"], abs=5e-4)  # lesion's recall
    at.slider(key="inspect_threshold").set_value(0.0).run()  # P(lesion) >= 0: everything is lesion
    assert next(metric.value for metric in at.metric if metric.label == "Sensitivity (lesion)") == "1.000"


def test_binary_run_end_to_end(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, val_size=40, test_size=30, epochs=4)
    test_ids = inspect_store.get_predictions(run_id, "test")["sample_ids"]
    write_saliency(run_id, test_ids)
    (paths.run_dir(run_id) / "best.keras").write_bytes(b"model")
    at = page()
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    charts = [chart for chart in at.get("plotly_chart") if not chart.key.startswith("inspect_doctor")]
    # val: matrix, ROC, PR; distribution; test: matrix, ROC, PR; history; slices; 3D (the doctor's evidence apart)
    assert len(charts) == 10
    assert at.select_slider(key="inspect_epoch").value == 4  # the best epoch
    assert len(at.get("download_button")) == 3
    assert samples_table(at).shape == (40, 7)
    assert not samples_table(at)["group"].isna().any()  # no "None" cells: a missing group shows "–"

    at.select_slider(key="inspect_epoch").set_value(1).run()
    at.slider(key="inspect_threshold").set_value(0.2).run()
    assert not at.exception
    at.button(key="inspect_use_youden").click().run()
    youden = evaluation.evaluate_run(inspect_store, run_id, "val", 1).youden
    assert at.slider(key="inspect_threshold").value == pytest.approx(round(youden.threshold, 2))
    metrics = {}
    for metric in at.metric:  # the validation block comes first
        metrics.setdefault(metric.label, metric.value)
    # An old run (no positive class recorded): its numbers are for the second class, and say so.
    assert float(metrics["Sensitivity (right)"]) + float(metrics["Specificity (right)"]) - 1 == pytest.approx(
        youden.j, abs=0.05)
    assert "positive class: right (the second class" in unescape_markdown(at.caption[0].value)

    at.checkbox(key="inspect_misclassified").check().run()
    table = samples_table(at)
    assert not table["correct"].any() if len(table) else True

    at.checkbox(key="inspect_misclassified").uncheck().run()
    at.radio(key="inspect_sample_split").set_value(at.radio(key="inspect_sample_split").options[1]).run()
    assert samples_table(at).shape[0] == 30
    overlay = at.checkbox(key="inspect_overlay")
    assert overlay.value and not overlay.disabled  # this test sample has a map
    at.slider(key="inspect_slice_axial").set_value(1).run()
    at.slider(key="inspect_level").set_value(0.3).run()
    assert not at.exception


def test_multiclass_run_and_filters(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=3, val_size=45, test_size=0, epochs=3)
    at = page().run()
    assert not at.exception
    assert at.selectbox(key="inspect_run").value == run_id
    assert "inspect_threshold" not in [s.key for s in at.slider]
    at.multiselect(key="inspect_classes").select("class1").run()
    table = samples_table(at)
    assert set(table["true"]) <= {"class1"}
    at.slider(key="inspect_confidence").set_value((0.99, 1.0)).run()
    assert not at.exception  # possibly no rows: an info instead of a viewer
    assert any("Test predictions are stored" in info.value for info in at.info)


def test_slider_redraw_time_on_2000_validation_samples(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, val_size=2000, test_size=300, epochs=12)
    at = page()
    at.query_params["run"] = str(run_id)
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    assert not at.exception
    timings = {}
    for name, move in (
        ("epoch", lambda value: at.select_slider(key="inspect_epoch").set_value(value)),
        ("threshold", lambda value: at.slider(key="inspect_threshold").set_value(value / 20)),
    ):
        samples = []
        for value in (3, 7, 9):
            move(value)
            started = time.perf_counter()
            at.run()
            samples.append(time.perf_counter() - started)
            assert not at.exception
        timings[name] = samples
    print(
        f"\nInspect page, 2,000 validation samples: first run {first:.2f} s; "
        + "; ".join(f"{name} slider redraw {min(s):.3f}-{max(s):.3f} s (median {np.median(s):.3f})"
                    for name, s in timings.items())
        + f"; target {REDRAW_TARGET_S} s"
    )
    for samples in timings.values():
        assert np.median(samples) < REDRAW_LIMIT_S


def test_page_never_imports_tensorflow(inspect_store, tmp_path):
    predictions_run(inspect_store, num_classes=2, epochs=2)
    code = (
        "import sys, json; sys.path.insert(0, '.'); from streamlit.testing.v1 import AppTest; "
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run(); "
        "at.select_slider(key='inspect_epoch').set_value(1).run(); "
        "charts = [c for c in at.get('plotly_chart') if not c.key.startswith('inspect_doctor')]; "
        "print(json.dumps({'exception': len(at.exception), 'charts': len(charts), "
        "'modules': sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.REPO_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"exception": 0, "charts": 10, "modules": []}


def test_running_run_follows_new_epochs_and_keeps_the_chosen_epoch(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, val_size=20, test_size=0, epochs=2, status=RunStatus.RUNNING)
    at = page()
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    assert any("Still training" in caption.value for caption in at.caption)
    assert at.select_slider(key="inspect_epoch").options == ["1", "2"]
    at.select_slider(key="inspect_epoch").set_value(1).run()

    # The worker records epoch 3: the page's next redraw offers it and keeps epoch 1 chosen.
    predictions = inspect_store.get_predictions(run_id, "val", epoch=2)
    inspect_store.save_predictions(
        run_id, 3, "val", predictions["sample_ids"], predictions["labels"], predictions["probabilities"]
    )
    inspect_store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], epochs_done=3)
    at.run()
    assert not at.exception
    assert at.select_slider(key="inspect_epoch").options == ["1", "2", "3"]
    assert at.select_slider(key="inspect_epoch").value == 1
    assert not any("Still training" in caption.value for caption in at.caption)


def test_samples_display_shows_a_dash_for_a_missing_group():
    import pandas as pd

    from ui import inspect as inspect_ui

    groups = pd.Series([None, 7, np.nan, "PAT004"], dtype=object)
    table = pd.DataFrame({"sample_id": [0, 1, 2, 3], "group": groups, "loss": [0.1, 0.2, 0.3, 0.4]})
    shown = inspect_ui.samples_display(table)
    assert list(shown["group"]) == ["–", "7", "–", "PAT004"]
    assert table["group"].iloc[0] is None  # the table itself (and its CSV) is left as it was


def _timeline(at: AppTest):
    """The timeline expander (its label counts the events) and the text inside it."""
    [expander] = [e for e in at.expander if e.label.startswith("Timeline")]
    return expander


def test_a_run_with_events_shows_its_timeline_as_text(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, epochs=2)
    inspect_store.log_event(run_id, "queued: waiting for a free slot")
    inspect_store.log_event(run_id, "note [click](https://evil.example) **bold** <b>tag</b>", level="warning")
    at = page()
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    expander = _timeline(at)
    assert expander.label == "Timeline (2 events)"
    [table] = expander.dataframe
    frame = table.value
    assert list(frame.columns) == ["time", "level", "message"]
    assert list(frame["level"]) == ["info", "warning"]
    # The message is shown exactly as recorded: a DataFrame cell is plain text, no link or emphasis.
    assert list(frame["message"]) == ["queued: waiting for a free slot",
                                      "note [click](https://evil.example) **bold** <b>tag</b>"]
    assert all(len(time_text) == len("2026-12-05 21:00:00") for time_text in frame["time"])


def test_a_run_without_events_says_so(inspect_store):
    run_id = predictions_run(inspect_store, num_classes=2, epochs=2)
    at = page()
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    expander = _timeline(at)
    assert expander.label == "Timeline (0 events)" and not expander.dataframe
    assert [caption.value for caption in expander.caption] == ["This run has recorded no events."]
