"""The Data page on the radiologist's path: a zip of DICOM CT patient folders and a separate labels CSV in
one upload, the preview naming the CSV, its columns (changeable) and the CT window; a class layout that
cannot train disables Import with the sentence that says why."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import datasets, paths
from engine.errors import DataError
from tests.dashboard.conftest import APP, APP_TIMEOUT_S
from tests.datasets import scans
from ui import import_form, uploads

FORM = {"format": "auto", "labels_csv": "", "group_column": "", "shape": "", "normalization": import_form.AUTO,
        "window": import_form.AUTO, "channels": "keep", "reorient": False}
DIAGNOSES = {f"P{index:02d}": ("lesion" if index % 2 else "normal") for index in range(1, 13)}

def _patients_zip(tmp_path: Path) -> bytes:
    scans.write_ct_patients(tmp_path / "patients", DIAGNOSES)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((tmp_path / "patients").rglob("*")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    return buffer.getvalue()

def _labels() -> bytes:
    rows = ["patient_id,diagnosis,age"] + [f"{p},{label},{50 + i}" for i, (p, label) in enumerate(DIAGNOSES.items())]
    return ("\n".join(rows) + "\n").encode()

def _errors(at) -> list[str]:
    """The red boxes as the reader sees them (their Markdown escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]

def _page(**state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.run()
    at.session_state["data_browse"] = "shapes3d"
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("app_pages/data.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at

def test_zip_plus_labels_csv_in_one_upload_preview_change_a_column_and_import(store, tmp_path):
    pending = import_form.prepare_preview([("patients.zip", _patients_zip(tmp_path)), ("labels.csv", _labels())],
                                        None, FORM)
    preview = pending["preview"]
    assert preview["labels_csv"] == "labels.csv" and preview["layout"] == "labels-csv"
    assert preview["columns"] == {"id": "patient_id", "label": "diagnosis", "group": None, "split": None}
    assert preview["classes"] == {"lesion": 6, "normal": 6} and preview["problems"] == []
    assert preview["window"] == "soft_tissue" and preview["intensity"].startswith("CT (DICOM Modality CT)")
    assert pending["name"] == "patients"

    at = _page(data_pending=pending, data_name=pending["name"])
    texts = "\n".join(t.value for t in at.text)
    assert "Labels CSV: labels.csv (id column: patient_id, label column: diagnosis" in texts
    assert "Intensities: CT (DICOM Modality CT): window soft_tissue (level 50 HU, width 400 HU)" in texts
    assert at.selectbox(key="data_column_label").value == "diagnosis"
    assert not at.button(key="data_import").disabled
    # The age as the label: 12 classes of one sample, said at once, and Import is disabled.
    at.selectbox(key="data_column_label").select("age").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["data_pending"]["preview"]["columns"]["label"] == "age"
    assert any("cannot be trained: every sample is a class of its own" in e for e in _errors(at))
    assert at.button(key="data_import").disabled
    at.selectbox(key="data_column_label").select("diagnosis").run()
    assert not at.button(key="data_import").disabled
    at.button(key="data_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert datasets.imported.names() == ["patients"]
    assert re.sub(r"\\(.)", r"\1", at.success[0].value).startswith("Imported patients: 12 samples, 2 classes")
    assert at.session_state["data_upload_round"] == 1  # a new uploader key: the uploader is empty
    assert not [p.name for p in paths.imports_dir().iterdir() if p.name.startswith(".")]

def test_patient_folders_without_labels_are_refused_with_the_sentence(store, tmp_path):
    # Patient folders taken for classes are refused before anything is imported (issue 21), and the upload is gone.
    with pytest.raises(DataError, match="look like patient or series folders, not classes.*give a labels CSV"):
        import_form.prepare_preview([("patients.zip", _patients_zip(tmp_path))], None, FORM)
    assert not [p.name for p in paths.imports_dir().iterdir() if p.name.startswith(".")]

@pytest.mark.parametrize("typed", ["labels.csv", ""])
def test_a_csv_inside_the_zip_is_found_typed_or_not(store, tmp_path, typed):
    scans.write_ct_patients(tmp_path / "study" / "patients", DIAGNOSES)
    (tmp_path / "study" / "patients" / "labels.csv").write_bytes(_labels())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((tmp_path / "study").rglob("*")):
            archive.write(path, path.relative_to(tmp_path / "study").as_posix())
    pending = import_form.prepare_preview([("study.zip", buffer.getvalue())], None, dict(FORM, labels_csv=typed))
    assert pending["preview"]["labels_csv"] == "labels.csv" and pending["preview"]["problems"] == []
    uploads.discard_upload(pending["upload"])
