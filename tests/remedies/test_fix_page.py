"""The Apply action on the Inspect page's findings and the verdict under Fixes, through AppTest (fake workers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.remedies import pairing
from tests import fake_worker
from tests.fake_runs import predictions_run
from tests.jobs.helpers import wait_ended

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def page_store(store, monkeypatch):
    import streamlit as st

    st.cache_data.clear()
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.2")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    return store


def overfitting_run(store) -> int:
    """A run that memorises (the doctor's overfitting problem) on shapes3d volumes the tutorial net can take."""
    run_id = predictions_run(store, num_classes=2, val_size=20, test_size=10, epochs=6, seed=3, volume_size=12)
    store.log_metrics(run_id, [
        {"kind": "epoch", "epoch": epoch, "name": name, "value": value}
        for name, values in {"loss": [0.69, 0.40, 0.20, 0.08, 0.03, 0.01],
                             "val_loss": [0.70, 0.52, 0.50, 0.62, 0.80, 1.05],
                             "accuracy": [0.55, 0.80, 0.92, 0.98, 1.0, 1.0],
                             "val_accuracy": [0.52, 0.70, 0.72, 0.70, 0.68, 0.66]}.items()
        for epoch, value in enumerate(values, start=1)
    ])
    store.update_run(run_id, best_epoch=3, best_value=0.50, monitor="val_loss")
    return run_id


def test_apply_on_the_overfitting_finding_queues_the_pairs_and_fixes_shows_the_verdict(page_store):
    run_id = overfitting_run(page_store)
    at = AppTest.from_file(str(ROOT / "app_pages" / "inspect.py"), default_timeout=60)
    at.query_params["run"] = str(run_id)
    at.run()
    assert not at.exception
    assert any("No fix of this run" in caption.value for caption in at.caption)
    apply = next(button for button in at.button if button.key.endswith("_overfitting_apply"))
    prefix = apply.key.removesuffix("_apply")
    changes = next(frame.value for frame in at.dataframe if "why" in frame.value.columns)
    assert set(changes["field"]) == {"model.dropout_rate", "model.l2", "training.augment", "training.early_stopping"}
    at.number_input(key=f"{prefix}_count").set_value(2)
    apply.click()
    at.run()
    assert not at.exception
    assert any("Queued 2 pairs" in message.value for message in at.success), (
        [e.value for e in at.error], [e.value for e in at.info], [e.value for e in at.success])
    (record,) = pairing.list_records(run_id)
    for pair in record["pairs"]:
        for member in pair:
            wait_ended(page_store, member)
    at.run()
    assert not at.exception
    report = pairing.fix_report(record["group"], store=page_store)
    assert any(report.sentence.replace("+", "") in markdown.value.replace("\\", "").replace("+", "")
               for markdown in at.markdown), [m.value for m in at.markdown]
    assert at.selectbox(key="inspect_fix_group").value == record["group"]
    pairs = next(frame.value for frame in at.dataframe if "fixed run" in frame.value.columns)
    assert len(pairs) == 2 and pairs["difference"].notna().all()
