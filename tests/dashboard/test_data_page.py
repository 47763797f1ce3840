"""AppTest tests of the Data page: browse, server-folder and upload imports, bad input, delete.

The data are tiny: a MedMNIST-layout .npz of 40 volumes of 16^3 and a zip of
NIfTI class folders, written in tmp_path. AppTest cannot drive st.file_uploader,
so the upload path goes through ``import_form.prepare_preview`` (what the page
calls with the uploaded bytes) and the pending import it returns.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, APP_TIMEOUT_S
from engine import datasets, paths
from engine.errors import DataError
from tests.datasets.scans import write_medmnist, write_nifti
from ui import import_form, text

FORM_DEFAULTS = {"format": "auto", "labels_csv": "", "group_column": "", "shape": "", "normalization": "none",
                 "window": "none", "channels": "keep", "reorient": True}  # reorient: on by default since issue 21


def plain(text: str) -> str:
    """A Markdown-escaped message as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", str(text))


def errors(at) -> list[str]:
    return [plain(e.value) for e in at.error]


def table(at, column: str):
    """The dataframe that has ``column`` (AppTest does not expose a dataframe's key)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def data_page(store):
    """Open the Data page browsing ``browse`` (the tiny built-in by default; digits3d takes seconds)."""

    def open_page(browse: str | None = "shapes3d", **state) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
        at.run()
        if browse:
            at.session_state["data_browse"] = browse
        for key, value in state.items():
            at.session_state[key] = value
        at.switch_page("app_pages/data.py")
        at.run()
        no_exceptions(at)
        return at

    return open_page


@pytest.fixture
def scans(tmp_path, monkeypatch):
    """The allowed import root, holding a MedMNIST .npz in organ/ (24 train, 8 val, 8 test, 3 classes)."""
    root = tmp_path / "scans"
    (root / "organ").mkdir(parents=True)
    write_medmnist(root / "organ" / "organ3d.npz", sizes=(24, 8, 8), edge=16)
    monkeypatch.setenv("CONV3D_LAB_IMPORT_ROOTS", str(root))
    return root


def nifti_zip(classes=("healthy", "lesion"), per_class: int = 6, edge: int = 16, junk: bool = True) -> bytes:
    """A zip of one folder per class of NIfTI volumes (2 mm voxels), and a junk file that will be skipped."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for class_name in classes:
            for index in range(per_class):
                path = Path("/tmp") / f"data-page-{class_name}-{index}.nii.gz"
                write_nifti(path, rng.random((edge, edge, edge)).astype(np.float32))
                archive.write(path, f"my scans/{class_name}/case{index:02d}.nii.gz")
                path.unlink()
        if junk:
            archive.writestr(f"my scans/{classes[0]}/broken.nii.gz", b"not a nifti file")
    return buffer.getvalue()


# ------------------------------------------------------------------ browse
def test_browse_a_builtin_dataset_draws_every_chart_and_the_viewer(data_page):
    at = data_page("shapes3d")
    assert at.title[0].value == "Data"
    assert [m.value for m in at.metric] == ["96", "12³", "2", "none"]
    charts = {chart.proto.id for chart in at.get("plotly_chart")}
    assert len(charts) == 4  # class balance, histogram, slice grid, the viewer's three planes
    assert "data_delete" not in [button.key for button in at.button]  # a built-in cannot be deleted
    at.number_input(key="data_sample").set_value(5).run()
    at.toggle(key="data_3d").set_value(True).run()
    no_exceptions(at)
    assert len(at.get("plotly_chart")) == 5
    assert "Sample 5: class" in "\n".join(t.value for t in at.text)


# ------------------------------------------------------------------ server folder
def test_a_server_folder_outside_the_allowed_roots_is_refused_with_a_sentence(data_page, scans, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_medmnist(elsewhere / "organ3d.npz", edge=16)
    at = data_page()
    at.radio(key="data_source_kind").set_value("Folder on the server").run()
    at.text_input(key="data_folder").input(str(elsewhere)).run()
    at.button(key="data_preview").click().run()
    no_exceptions(at)
    assert len(at.error) == 1
    assert "is outside the folders the dashboard may import from" in errors(at)[0]
    assert str(scans) in errors(at)[0] and "CONV3D_LAB_IMPORT_ROOTS" in errors(at)[0]
    assert "data_pending" not in at.session_state
    assert not datasets.imported.names()


def test_preview_then_import_a_server_folder_and_train_lists_it_without_a_restart(data_page, scans):
    at = data_page()
    at.switch_page("app_pages/train.py")
    at.run()  # the Train page's catalog is cached before the import ...
    assert not any("organ_scans" in option for option in at.selectbox(key="train_dataset").options)
    at.switch_page("app_pages/data.py")
    at.run()
    at.radio(key="data_source_kind").set_value("Folder on the server").run()
    at.text_input(key="data_folder").input(str(scans / "organ")).run()
    started = time.perf_counter()
    at.button(key="data_preview").click().run()
    preview_s = time.perf_counter() - started
    no_exceptions(at)
    assert not at.error
    preview = at.session_state["data_pending"]["preview"]
    assert (preview["format"], preview["layout"], preview["samples"]) == ("npz", "medmnist", 40)
    assert preview["splits"] == {"train": 24, "val": 8, "test": 8}
    assert [m.value for m in at.metric][:5] == ["npz", "40", "3", "none", "0"]
    class_table = table(at, "class")
    assert class_table["samples"].sum() == 40 and len(class_table) == 3
    assert list(table(at, "shape (D×H×W)").iloc[:, 0]) == ["16x16x16"]
    assert at.text_input(key="data_name").value == "organ"

    at.text_input(key="data_name").input("organ_scans").run()
    started = time.perf_counter()
    at.button(key="data_import").click().run()
    import_s = time.perf_counter() - started
    no_exceptions(at)
    assert not at.error
    assert "Imported organ_scans: 40 samples, 3 classes, 0 skipped" in plain(at.success[0].value)
    assert "data_pending" not in at.session_state
    assert at.selectbox(key="data_browse").value == "organ_scans"
    assert [m.value for m in at.metric] == ["40", "16³", "3", "none"]
    assert len(at.get("plotly_chart")) == 4
    assert (scans / "organ" / "organ3d.npz").exists()  # a server folder is read, never removed
    print(f"\npreview of 40 volumes of 16^3 (npz): {preview_s:.2f} s page run; import: {import_s:.2f} s page run")

    at.switch_page("app_pages/train.py")
    at.run()  # ... and lists the new dataset on the next run, no restart
    picker = at.selectbox(key="train_dataset")
    assert "organ_scans (organ_scans)" in picker.options
    picker.set_value("organ_scans").run()
    no_exceptions(at)
    assert [m.value for m in at.metric][:3] == ["40", "16³", "3"]
    assert "Imported from organ (npz): 40 samples, 3 classes." in [plain(c.value) for c in at.caption]


def test_a_bad_file_gives_a_sentence_not_an_exception(data_page, scans):
    bad = scans / "bad"
    bad.mkdir()
    (bad / "**bold** <b>x<i> $x$.h5").write_bytes(b"this is not HDF5")
    at = data_page()
    at.radio(key="data_source_kind").set_value("Folder on the server").run()
    at.text_input(key="data_folder").input(str(bad)).run()
    at.button(key="data_preview").click().run()
    no_exceptions(at)
    assert "is not a readable HDF5 file" in errors(at)[0]
    # The file name is shown literally: escaped for Markdown, not turned into bold, HTML or LaTeX.
    assert "\\*\\*bold\\*\\* \\<b\\>x\\<i\\> \\$x\\$\\.h5" in at.error[0].value
    assert "data_pending" not in at.session_state

    at.text_input(key="data_folder").input(str(scans / "missing")).run()
    at.button(key="data_preview").click().run()
    no_exceptions(at)
    assert "does not exist" in errors(at)[0]
    at.text_input(key="data_shape").input("64 by 64").run()  # a bad option is a sentence too
    at.text_input(key="data_folder").input(str(scans / "organ")).run()
    at.button(key="data_preview").click().run()
    no_exceptions(at)
    assert "is not three whole numbers D H W" in errors(at)[0]


def test_bad_uploads_are_refused_with_a_sentence_and_leave_nothing(store):
    cases = {
        "not a zip": [("scans.zip", b"PK but not really")],
        "climbs out of the archive": [("scans.zip", _zip({"../evil.nii": b"x"}))],
        "is not a readable NumPy .npz file": [("volumes.npz", b"junk")],
        "on its own (or with its labels CSV)": [("a.zip", b""), ("b.nii.gz", b"")],
        "upload each file once": [("a.nii", b""), ("A.nii", b"")],
        "Choose one or more files": [],
    }
    for expected, files in cases.items():
        with pytest.raises(DataError) as caught:
            import_form.prepare_preview(files, None, FORM_DEFAULTS)
        assert expected in str(caught.value), (expected, str(caught.value))
        assert ".upload-" not in str(caught.value) and ".unzipped-" not in str(caught.value)
    assert not [p.name for p in paths.imports_dir().iterdir()]


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ------------------------------------------------------------------ uploads
def test_an_uploaded_zip_is_previewed_imported_and_its_folder_removed(data_page):
    started = time.perf_counter()
    pending = import_form.prepare_preview([("my scans.zip", nifti_zip())], None, FORM_DEFAULTS)
    preview_s = time.perf_counter() - started
    upload = Path(pending["upload"])
    assert upload.is_dir() and upload.parent == paths.imports_dir().resolve() and upload.name.startswith(".")
    preview = pending["preview"]
    assert (preview["format"], preview["layout"]) == ("nifti", "class-folders")
    assert preview["classes"] == {"healthy": 6, "lesion": 6}
    assert preview["shapes"] == {"16x16x16": 12} and preview["spacings"] == {"2 x 2 x 2 mm": 12}
    assert list(preview["skipped"]) == ["healthy/broken.nii.gz"]
    assert pending["name"] == "my-scans" and pending["label"] == "my scans.zip"

    at = data_page(data_pending=pending, data_name=pending["name"])
    assert at.code[-1].value.startswith("healthy/broken.nii.gz: is not a readable NIfTI file")
    started = time.perf_counter()
    at.button(key="data_import").click().run()
    import_s = time.perf_counter() - started
    no_exceptions(at)
    assert datasets.imported.names() == ["my-scans"]
    assert not upload.exists(), "the upload folder outlived the import"
    assert [m.value for m in at.metric] == ["12", "16³", "2", "none"]
    assert "Source: upload: my scans" in "\n".join(t.value for t in at.text)
    print(f"\nupload of 12 NIfTI volumes of 16^3 in a zip: preview {preview_s:.2f} s, import {import_s:.2f} s page run")

    # A second upload, discarded: its folder goes too, and nothing is imported.
    pending = import_form.prepare_preview([("more.zip", nifti_zip(per_class=2, junk=False))], None, FORM_DEFAULTS)
    at.session_state["data_pending"] = pending
    at.run()
    at.button(key="data_discard").click().run()
    no_exceptions(at)
    assert not Path(pending["upload"]).exists()
    assert "data_pending" not in at.session_state
    assert datasets.imported.names() == ["my-scans"]
    assert not [p.name for p in paths.imports_dir().iterdir() if p.name.startswith(".")]


def test_an_import_that_fails_says_why_and_keeps_the_preview(data_page, scans):
    pending = import_form.prepare_preview([("broken.zip", _zip({"a/x.nii.gz": b"1", "b/y.nii.gz": b"2"}))], None,
                                        FORM_DEFAULTS)
    at = data_page(data_pending=pending, data_name="broken")
    assert at.button(key="data_import").disabled  # nothing usable: the preview says so first
    assert "Nothing to import" in plain(at.warning[0].value)
    datasets.import_dataset(scans / "organ", "taken")
    pending = import_form.prepare_preview([("ok.zip", nifti_zip(per_class=3, junk=False))], None, FORM_DEFAULTS)
    at.session_state["data_pending"] = pending
    at.session_state["data_name"] = "taken"
    at.run()
    at.button(key="data_import").click().run()
    no_exceptions(at)
    assert "A dataset named 'taken' already exists" in errors(at)[0]
    at.text_input(key="data_name").input("bad name!").run()
    at.button(key="data_import").click().run()
    no_exceptions(at)
    assert "cannot be used" in errors(at)[0]
    assert Path(pending["upload"]).exists() and "data_pending" in at.session_state


# ------------------------------------------------------------------ delete
def test_delete_asks_for_confirmation_and_train_forgets_the_dataset(data_page, scans):
    datasets.import_dataset(scans / "organ", "to_delete")
    at = data_page(browse="to_delete")
    at.button(key="data_delete").click().run()
    assert "Delete the imported dataset to_delete?" in plain(at.warning[0].value)
    assert datasets.imported.names() == ["to_delete"]  # nothing happens before the confirmation
    at.button(key="data_delete_cancel").click().run()
    assert not at.warning and datasets.imported.names() == ["to_delete"]

    at.button(key="data_delete").click().run()
    at.button(key="data_delete_confirm").click().run()
    no_exceptions(at)
    assert datasets.imported.names() == []
    assert "Deleted the dataset to_delete." in plain(at.success[0].value)
    assert at.selectbox(key="data_browse").value != "to_delete"
    at.switch_page("app_pages/train.py")
    at.run()
    assert not any("to_delete" in option for option in at.selectbox(key="train_dataset").options)


# ------------------------------------------------------------------ helpers
def test_text_helpers_show_user_strings_literally():
    assert text.markdown_text("**a** _b_ :red[c] $x$ <i>") == (
        "\\*\\*a\\*\\* \\_b\\_ \\:red\\[c\\] \\$x\\$ \\<i\\>"
    )
    assert text.plotly_text("<b>AD</b> & CN") == "&lt;b&gt;AD&lt;/b&gt; &amp; CN"
    assert text.plotly_text("a" * 50, limit=10) == "a" * 9 + "…"
    assert import_form.default_dataset_name("My scans (2).zip") == "My-scans-2"
    assert import_form.default_dataset_name("...") == "imported"
    assert import_form.parse_shape("32x64 64") == (32, 64, 64) and import_form.parse_shape(" ") is None


def test_the_positive_class_is_guessed_in_the_preview_and_changeable_after_the_import(data_page):
    pending = import_form.prepare_preview([("lesions.zip", nifti_zip(per_class=3, junk=False))], None, FORM_DEFAULTS)
    assert pending["preview"]["positive_class"] == "lesion"
    at = data_page(data_pending=pending, data_name="lesions")
    picker = at.selectbox(key="data_positive_class")
    assert picker.label == "Positive class" and picker.value == "lesion" and picker.options == ["healthy", "lesion"]
    at.button(key="data_import").click().run()
    no_exceptions(at)
    assert datasets.dataset_info("lesions")["positive_class"] == "lesion"

    # Browsing the import: the same picker, saved with a button.
    editor = at.selectbox(key="data_positive_lesions")
    assert editor.value == "lesion" and not [b for b in at.button if b.key == "data_positive_save"]
    editor.set_value("healthy").run()
    at.button(key="data_positive_save").click().run()
    no_exceptions(at)
    assert datasets.dataset_info("lesions")["positive_class"] == "healthy"
    assert "the positive class is now healthy" in plain(at.success[0].value)

    # The Train form starts on the dataset's positive class and puts it in the config.
    at.switch_page("app_pages/train.py")
    at.run()
    at.selectbox(key="train_dataset").set_value("lesions").run()
    no_exceptions(at)
    assert at.selectbox(key="train_positive_class_lesions").value == "healthy"


def test_a_builtin_states_its_positive_class(data_page):
    at = data_page("phantom_lesions")
    assert "Positive class: lesion" in "\n".join(t.value for t in at.text)


def test_a_dicom_import_shows_each_samples_patient_id_not_a_group_code(data_page, tmp_path):
    from tests.datasets import scans as scan_files

    root = tmp_path / "dicom"
    for label in ("healthy", "lesion"):
        for patient in range(2):
            scan_files.write_dicom_series(root / label / f"p{patient}", scan_files.ramp_slices(4, offset=patient),
                                          patient=f"PID-{label}-{patient}")
    datasets.import_dataset(root, "by_patient")
    dataset = datasets.load_dataset("by_patient")
    at = data_page(browse="by_patient")
    for sample in range(4):
        at.number_input(key="data_sample").set_value(sample).run()
        no_exceptions(at)
        shown = "\n".join(t.value for t in at.text)
        assert f"group {dataset.group_labels()[sample]}" in shown and "group PID-" in shown, shown
