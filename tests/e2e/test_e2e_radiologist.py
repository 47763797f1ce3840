"""The radiologist's first hour in headless Chromium at 1280 px: a zip of DICOM CT patient folders and a
separate labels.csv uploaded together on the Data page, previewed (the CSV, its columns, the CT window and the
positive class, lesion, named), imported, trained for 2 tiny epochs from the Train page, and opened on Inspect,
which names lesion as the positive class. The first loss, read from the store, is of order 1 (a window scaled
to [0, 1], not raw Hounsfield units).

Saves test-artifacts/radiologist-preview.png, radiologist-imported.png, radiologist-train.png and
radiologist-inspect.png.
"""

from __future__ import annotations

import re
import time
import zipfile

import pytest

from tests.datasets import scans
from tests.e2e.conftest import ARTIFACTS, set_number, wait_for_app

pytestmark = pytest.mark.e2e

WIDTH = 1280
TRAINING_TIMEOUT_S = 240
# 20 patients (10 per class) of 16 slices of 16 x 16: enough for stratified 0.15 / 0.15 splits.
DIAGNOSES = {f"PAT{index:03d}": ("lesion" if index % 2 else "normal") for index in range(1, 21)}


@pytest.fixture
def ct_upload(tmp_path):
    """patients.zip (one folder per patient, a CT series each, HU through RescaleIntercept) and labels.csv."""
    scans.write_ct_patients(tmp_path / "patients", DIAGNOSES, count=16, edge=16)
    archive = tmp_path / "patients.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((tmp_path / "patients").rglob("*")):
            handle.write(path, path.relative_to(tmp_path).as_posix())
    labels = tmp_path / "labels.csv"
    labels.write_text("patient_id,diagnosis,age\n" + "".join(
        f"{patient},{label},{40 + index}\n" for index, (patient, label) in enumerate(DIAGNOSES.items())))
    return archive, labels


def _screenshot(page, name: str) -> None:
    """The whole app at WIDTH: the viewport grown to the app's height (Streamlit scrolls in a container)."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
        "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": WIDTH, "height": max(900, min(height + 100, 6000))})
    page.wait_for_timeout(1000)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    print(f"screenshot: {path}")


def _no_error_boxes(page) -> None:
    assert page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count() == 0


def test_zip_of_ct_patients_and_labels_csv_to_a_trained_run_on_inspect(ct_upload, dashboard, browser_page):
    from engine import paths
    from engine.store import open_store

    archive, labels = ct_upload
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.goto(f"{dashboard}/data")
    page.get_by_role("heading", name="Data", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)

    # Upload both files at once, then preview.
    page.locator(".st-key-data_upload input[type='file']").set_input_files([str(archive), str(labels)])
    page.locator("[data-testid='stFileChip']").nth(1).wait_for()
    wait_for_app(page)
    page.locator(".st-key-data_preview button").click()
    page.get_by_role("heading", name="Preview", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    _no_error_boxes(page)
    page.get_by_text("Labels CSV: labels.csv (id column: patient_id, label column: diagnosis, group column: "
                     "none, split column: none)").wait_for()
    page.get_by_text(re.compile(r"^Intensities: CT \(DICOM Modality CT\): window soft_tissue "
                                r"\(level 50 HU, width 400 HU\), scaled to \[0, 1\]")).wait_for()
    shown = page.locator(".st-key-data_column_label").evaluate(
        "e => e.textContent + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")
    assert "diagnosis" in shown, shown
    # Two classes: the preview names the positive class (lesion, the finding), in its picker.
    positive_picker = page.locator(".st-key-data_positive_class")
    assert "Positive class" in positive_picker.inner_text()
    assert positive_picker.locator("input[role='combobox']").input_value() == "lesion"
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame] canvas').length >= 3")
    page.wait_for_timeout(1000)
    _screenshot(page, "radiologist-preview")

    name_input = page.locator(".st-key-data_name input")
    assert name_input.input_value() == "patients"
    name_input.fill("ct_patients")
    name_input.press("Enter")
    wait_for_app(page)
    page.locator(".st-key-data_import button").click()
    page.get_by_text(re.compile(r"^Imported ct_patients: 20 samples, 2 classes, 0 skipped")).wait_for(timeout=120_000)
    wait_for_app(page)
    _no_error_boxes(page)
    assert page.locator("[data-testid='stFileChip']").count() == 0, "the uploader kept the files after the import"
    assert not [p.name for p in paths.imports_dir().iterdir() if p.name.startswith(".")]
    _screenshot(page, "radiologist-imported")

    # Train 2 tiny epochs on it.
    page.get_by_role("link", name="Train").click()
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
    page.locator(".st-key-train_dataset input[role='combobox']").click()
    page.get_by_role("option", name=re.compile("ct_patients")).click()
    wait_for_app(page)
    page.get_by_text("Imported from patients (dicom): 20 samples, 2 classes.").wait_for(timeout=60_000)
    set_number(page, "train_epochs", 2)
    set_number(page, "train_batch_size", 4)
    set_number(page, "train_width_multiplier", 0.5)
    page.locator(".st-key-train_name input").fill("ct e2e")
    page.locator(".st-key-train_name input").press("Enter")
    wait_for_app(page)
    page.get_by_text("Parameters").wait_for(timeout=TRAINING_TIMEOUT_S * 1000)
    _no_error_boxes(page)
    _screenshot(page, "radiologist-train")
    started = time.perf_counter()
    page.locator(".st-key-train_launch button").click()
    page.wait_for_url(re.compile(r"runs=\d+"), timeout=60_000)
    run_id = int(re.search(r"runs=(\d+)", page.url).group(1))
    page.get_by_text("finished", exact=True).first.wait_for(timeout=TRAINING_TIMEOUT_S * 1000)
    print(f"\nrun {run_id} finished {time.perf_counter() - started:.1f} s after Launch")

    store = open_store()
    run = store.get_run(run_id)
    assert run.config.data.dataset == "ct_patients" and run.config.data.normalization == "none"  # scaled once
    history = store.epoch_history(run_id)
    first_loss = history[0]["loss"]
    print(f"first epoch's training loss: {first_loss:.4f}")
    assert 0 < first_loss < 10, f"the first loss {first_loss} is not of order 1"
    assert run.positive_class == "lesion"

    page.goto(f"{dashboard}/inspect?run={run_id}")
    page.get_by_role("heading", name="Inspect", exact=True).wait_for(timeout=60_000)
    page.locator(".st-key-inspect_val_cm .js-plotly-plot").first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    # Inspect names the positive class, as in test_e2e_positive_class.py.
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "positive class: lesion" in body
    assert "Decision threshold on P(lesion)" in body
    assert "Sensitivity (lesion)" in body and "Specificity (lesion)" in body
    _screenshot(page, "radiologist-inspect")
