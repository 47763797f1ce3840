"""A split that holds one class: balanced accuracy and the missing class's recall are undefined, not 1.0 and 0
(``evaluate`` text and JSON, and the Inspect page)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from engine.cli import main
from engine.evaluation import evaluate_predictions, metrics
from engine.store import open_store
from tests.fake_runs import predictions_run
from ui.text import unescape_markdown

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "inspect.py")


def _one_class_run(store) -> int:
    """A two-class run whose validation split holds 'healthy' only, every sample answered right."""
    run_id = predictions_run(store, num_classes=2, val_size=12, test_size=0, epochs=1,
                      class_names=["healthy", "lesion"], positive_class="lesion")
    stored = store.get_predictions(run_id, "val", 1)
    store.save_predictions(run_id, 1, "val", stored["sample_ids"], np.zeros(12, dtype=np.int64),
                           np.tile([[0.9, 0.1]], (12, 1)).astype(np.float32))
    return run_id


def test_the_metrics_of_a_class_without_samples_are_undefined():
    result = evaluate_predictions(np.zeros(10, dtype=int), np.tile([[0.8, 0.2]], (10, 1)), ["healthy", "lesion"],
                                  positive_class="lesion")
    assert result.accuracy == 1.0 and result.balanced_accuracy is None and result.sensitivity is None
    lesion = result.per_class[1]
    assert lesion["recall"] is None and lesion["f1"] is None and lesion["undefined"]["recall"] == metrics.NO_SAMPLES
    assert result.undefined["balanced_accuracy"] == "no samples of 'lesion'"
    # With both classes present nothing is undefined, and balanced accuracy is the mean recall.
    both = evaluate_predictions(np.array([0, 0, 1, 1]), np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]]),
                                ["healthy", "lesion"], positive_class="lesion")
    assert both.balanced_accuracy == 0.75 and both.undefined == {} and "undefined" not in both.per_class[1]


def test_evaluate_prints_undefined_and_its_json_carries_null_with_the_reason(lab_home, capsys):
    run_id = _one_class_run(open_store())
    assert main(["evaluate", str(run_id)]) == 0
    text = capsys.readouterr().out
    assert "balanced accuracy undefined (no samples)" in text and "balanced accuracy 1.0" not in text
    assert "sensitivity (lesion) undefined (no samples)" in text
    lesion_row = [line for line in text.splitlines() if line.startswith("lesion ")][-1]  # the per-class table
    assert lesion_row.split() == ["lesion", "0.0000", "undefined", "1.0000", "undefined", "0"]
    assert "lesion: recall and f1 undefined (no samples)" in text
    assert main(["evaluate", str(run_id), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["balanced_accuracy"] is None and report["sensitivity"] is None
    assert report["undefined"]["balanced_accuracy"] == "no samples of 'lesion'"
    assert report["per_class"][1]["recall"] is None and report["per_class"][1]["undefined"]["recall"] == "no samples"


def test_the_inspect_page_shows_undefined_for_a_one_class_split(lab_home):
    import streamlit as st

    st.cache_data.clear()
    run_id = _one_class_run(open_store())
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    values = {metric.label: metric.value for metric in at.metric}
    assert values["Balanced accuracy"] == "n/a" and values["Sensitivity (lesion)"] == "n/a"
    captions = [unescape_markdown(caption.value) for caption in at.caption]
    assert any("balanced accuracy: undefined (no samples of 'lesion')" in c and
               "recall (lesion): undefined (no samples)" in c for c in captions), captions
