"""The radiologist's import: patient folders of DICOM CT plus a labels CSV, found without being named, its
columns guessed from names and values; class layouts that cannot train said before the import; the
intensity handling chosen from the data (CT window, MR z-score) and shown in the preview."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from engine import datasets, paths
from engine.datasets import ImportOptions
from engine.errors import DataError
from tests.datasets import scans

DIAGNOSES = {f"P{index:02d}": ("lesion" if index % 2 else "normal") for index in range(1, 13)}


def _leftovers() -> list[str]:
    return [entry.name for entry in paths.imports_dir().iterdir()]


def _labels_csv(path, diagnoses=DIAGNOSES, header="Accession,Diagnosis,Site", extra=lambda i: "A") -> None:
    rows = [header] + [f"{patient},{label},{extra(i)}" for i, (patient, label) in enumerate(diagnoses.items())]
    path.write_text("\n".join(rows) + "\n")


def test_twelve_one_sample_classes_say_they_cannot_train_before_any_import(lab_home, tmp_path):
    # Twelve patient folders of DICOM: refused as patient folders taken for classes, before any import (issue 21).
    root = tmp_path / "patients"
    scans.write_ct_patients(root, DIAGNOSES)
    with pytest.raises(DataError, match="look like patient or series folders, not classes.*give a labels CSV"):
        datasets.preview_import(root, ImportOptions(labels_csv="none"))
    assert _leftovers() == []  # the preview wrote nothing
    # Twelve class folders of one NIfTI scan each: the layout passes the reader, the preview says it cannot train.
    root = tmp_path / "classes"
    rng = np.random.default_rng(0)
    for index in range(12):
        scans.write_nifti(root / f"class{index:02d}" / "scan.nii.gz", rng.normal(size=(8, 8, 8)).astype(np.float32))
    preview = datasets.preview_import(root)
    assert preview.layout == "class-folders" and len(preview.classes) == 12 and preview.samples == 12
    assert len(preview.problems) == 1
    problem = preview.problems[0]
    assert "cannot be trained" in problem and "12 classes of one sample each" in problem
    assert "give a labels CSV" in problem and "folder named after the class" in problem
    assert _leftovers() == []  # the preview wrote nothing
    with pytest.raises(DataError, match="cannot be trained: every sample is a class of its own"):
        datasets.import_dataset(root, "classes")
    assert _leftovers() == []


def test_a_single_class_and_a_tiny_class_are_problems_too(lab_home, tmp_path):
    root = tmp_path / "one"
    healthy = {f"P{i}": "normal" for i in range(4)}
    scans.write_ct_patients(root / "patients", healthy)
    _labels_csv(root / "patients" / "labels.csv", healthy)
    preview = datasets.preview_import(root)
    assert preview.problems and "all 4 samples have the class 'normal'" in preview.problems[0]
    shutil.rmtree(root / "patients")
    scans.write_ct_patients(root / "normal", {f"P{i}": "normal" for i in range(4)})
    scans.write_ct_patients(root / "lesion", {"Q1": "lesion", "Q2": "lesion"})
    preview = datasets.preview_import(root)
    assert len(preview.problems) == 1 and "the class 'lesion' has 2 sample(s)" in preview.problems[0]
    with pytest.raises(DataError, match="the class 'lesion' has 2 sample"):
        datasets.import_dataset(root, "tiny", check_splits=True)
    assert _leftovers() == []


def test_a_csv_at_the_top_of_a_zip_is_found_and_its_columns_guessed_from_values(lab_home, tmp_path):
    folder = tmp_path / "study"
    scans.write_ct_patients(folder / "study", DIAGNOSES)
    # Neither "Accession" nor "Diagnosis" is a usual name: the id is the column whose values name the folders.
    _labels_csv(folder / "study" / "labels.csv", header="Site,Accession,Diagnosis",
                extra=lambda i: "north" if i % 3 else "south")
    lines = (folder / "study" / "labels.csv").read_text().splitlines()
    (folder / "study" / "labels.csv").write_text(
        "\n".join([lines[0]] + [",".join([row.split(",")[2], row.split(",")[0], row.split(",")[1]])
                                for row in lines[1:]]) + "\n")
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, path.relative_to(folder).as_posix())
    preview = datasets.preview_import(archive)
    assert preview.labels_csv == "labels.csv" and preview.layout == "labels-csv"
    assert preview.columns == {"id": "Accession", "label": "Diagnosis", "group": None, "split": None}
    assert preview.csv_columns == ["Site", "Accession", "Diagnosis"]
    assert preview.classes == {"lesion": 6, "normal": 6} and preview.problems == []
    assert preview.modality == "CT" and preview.window == "soft_tissue" and preview.normalization == "none"
    assert preview.intensity.startswith("CT (DICOM Modality CT): window soft_tissue (level 50 HU, width 400 HU)")
    # Told otherwise: the site is the label (two sites), and "none" reads class folders instead.
    chosen = datasets.preview_import(archive, ImportOptions(label_column="Site"))
    assert chosen.columns["label"] == "Site" and chosen.classes == {"north": 8, "south": 4}
    with pytest.raises(DataError, match="has no column 'Sex' for the label"):
        datasets.preview_import(archive, ImportOptions(label_column="Sex"))
    with pytest.raises(DataError, match="patient or series folders, not classes"):  # the patients are no classes
        datasets.preview_import(archive, ImportOptions(labels_csv="none"))
    assert _leftovers() == []


def test_ct_is_windowed_to_unit_range_and_explicit_choices_win(lab_home, tmp_path):
    root = tmp_path / "ct"
    scans.write_ct_patients(root, DIAGNOSES)
    _labels_csv(tmp_path / "labels.csv")
    result = datasets.import_dataset(root, "ct", ImportOptions(labels_csv=str(tmp_path / "labels.csv")))
    assert result.classes == {"lesion": 6, "normal": 6}
    assert any(note.startswith("Intensities: CT (DICOM Modality CT): window soft_tissue") for note in result.notes)
    x = np.asarray(datasets.load_dataset("ct").x)
    assert x.min() == 0.0 and x.max() <= 1.0 and 0.2 < np.percentile(x, 90) <= 1.0
    manifest = datasets.imported.manifest("ct")
    assert manifest["preprocessing"]["window"] == "soft_tissue" and manifest["reader"]["labels_csv"] == "labels.csv"
    # An explicit choice wins: the values as read are Hounsfield units.
    preview = datasets.preview_import(root, ImportOptions(labels_csv=str(tmp_path / "labels.csv"),
                                                          normalization="none"))
    assert preview.window is None and preview.intensity == "as chosen: kept as read"
    datasets.import_dataset(root, "ct_lung", ImportOptions(labels_csv=str(tmp_path / "labels.csv"), window="lung"))
    assert datasets.imported.manifest("ct_lung")["preprocessing"]["window"] == "lung"
    # A run's normalisation follows the dataset: never twice after a window, a z-score for raw HU.
    method, why = datasets.default_normalization(datasets.dataset_info("ct"))
    assert method == "none" and "already scaled" in why and "soft_tissue" in why
    datasets.import_dataset(root, "ct_raw", ImportOptions(labels_csv=str(tmp_path / "labels.csv"),
                                                           normalization="none"))
    method, why = datasets.default_normalization(datasets.dataset_info("ct_raw"))
    assert method == "zscore" and "far from unit scale" in why
    assert datasets.default_normalization(datasets.dataset_info("shapes3d"))[0] == "none"


def test_mr_gets_a_zscore_and_hu_like_nifti_a_ct_window(lab_home, tmp_path):
    mr = tmp_path / "mr"
    for label in ("a", "b"):
        for index in range(3):
            scans.write_dicom_series(mr / label / f"p{index}", scans.ramp_slices(4, offset=500 * index),
                                     patient=f"{label}{index}")
    preview = datasets.preview_import(mr)
    assert preview.modality == "MR" and preview.normalization == "zscore" and preview.window is None
    datasets.import_dataset(mr, "mr")
    x = np.asarray(datasets.load_dataset("mr").x)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3, 4)), 0.0, atol=1e-4)

    nifti = tmp_path / "nifti"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        for index in range(3):
            scans.write_nifti(nifti / label / f"s{index}.nii.gz",
                              rng.uniform(-1024, 1500, (6, 6, 6)).astype(np.float32))
    preview = datasets.preview_import(nifti)
    assert preview.modality is None and preview.window == "soft_tissue"
    assert preview.intensity.startswith("CT-like (values ") and "in Hounsfield units" in preview.intensity
