"""Importing scans: DICOM series, NIfTI, 3D MNIST HDF5, MedMNIST NPZ; labels, groups, splits, bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import datasets, paths
from engine.datasets import ImportOptions
from engine.errors import ConfigError, DataError
from tests.datasets import scans


def _leftovers() -> list[str]:
    """Everything in data/imports/ besides finished datasets (staging, unzipped, deleted folders)."""
    return sorted(name for name in os.listdir(paths.imports_dir()) if name.startswith("."))


# ------------------------------------------------------------------ DICOM
def test_dicom_series_come_out_in_anatomical_order_rescaled(lab_home, tmp_path):
    root = tmp_path / "scans"
    expected = {}
    orders = ([7.5, -2.5, 5.0, 0.0, 2.5], [0.0, 10.0, 2.5, 5.0, 7.5], [5.0, 2.5, 0.0, -2.5, -5.0])
    # Positions out of order, InstanceNumber reversed, files shuffled and without extension.
    for label, explicit in (("healthy", False), ("lesion", True)):
        for patient, positions in enumerate(orders):
            expected[f"{label}/p{patient}"] = scans.write_dicom_series(
                root / label / f"p{patient}", scans.ramp_slices(5, offset=patient), positions=positions,
                patient=f"{label}-{patient // 2}", slope=2.0, intercept=-100.0, explicit=explicit,
                shuffle_seed=patient,
            )
    assert not any(path.suffix for path in root.rglob("*") if path.is_file())
    # reorient=False: the volume as stored (slice, row, column), to compare with what was written.
    result = datasets.import_dataset(root, "series", ImportOptions(reorient=False, normalization="none"))
    assert result.samples == 6 and result.classes == {"healthy": 3, "lesion": 3} and result.skipped == {}
    assert result.volume_shape == [5, 8, 8, 1] and result.groups == 4  # PatientID: p0 and p1 share one
    dataset = datasets.load_dataset("series")
    assert isinstance(dataset.x, np.memmap) and not dataset.x.flags.writeable
    manifest = datasets.imported.manifest("series")
    for index, sample in enumerate(manifest["samples"]):
        key = f"{sample['label']}/{sample['source'].split('/')[-1]}"
        np.testing.assert_array_equal(np.asarray(dataset.x[index])[..., 0], expected[key])
    # The first voxel of each slice rises with z: anatomical order, not file or instance order.
    first = np.asarray(dataset.x[0])[:, 0, 0, 0]
    assert np.all(np.diff(first) != 0)
    assert dataset.groups[0] == dataset.groups[1] != dataset.groups[2]


def test_a_corrupt_dicom_file_is_skipped_and_named(lab_home, tmp_path):
    root = tmp_path / "scans"
    for label in ("a", "b"):
        for patient in range(2):
            scans.write_dicom_series(root / label / f"{label}{patient}", scans.ramp_slices(3), patient=f"{label}{patient}",
                                     extension=".dcm")
    (root / "a" / "broken").mkdir()
    (root / "a" / "broken" / "slice.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(200))
    # A copy of a good series with one slice's pixel data cut short (one slice alone is not a volume).
    shutil.copytree(root / "b" / "b0", root / "b" / "truncated")
    good = sorted((root / "b" / "truncated").iterdir())[0]
    good.write_bytes(good.read_bytes()[:-100])
    result = datasets.import_dataset(root, "mixed")
    assert result.samples == 4
    assert set(result.skipped) == {"a/broken/slice.dcm", "b/truncated"}
    # Random bytes after the marker: pydicom either fails or finds no image; both are named.
    assert any(reason in result.skipped["a/broken/slice.dcm"] for reason in ("not a readable DICOM file", "holds no image"))
    assert "cannot be decoded" in result.skipped["b/truncated"]


def test_real_pydicom_files_multiframe_dose_and_2d_refused(lab_home, tmp_path):
    """pydicom's own files: single 2D images are refused as volumes (issue 21); the 15-frame RT dose grid is
    read with DoseGridScaling, and its RLE copy decodes to the same voxels. (Before issue 21 the 2D images were
    imported as depth-1 volumes and this test expected that.)"""
    import pydicom
    from pydicom.data import get_testdata_file

    root = tmp_path / "real"
    layout = {
        "ct": ["CT_small.dcm", "mr/MR_small.dcm", "SC_rgb_small_odd.dcm", "dose_rle/rtdose_rle.dcm",
               "dose_rle2/rtdose_rle.dcm"],
        "dose": ["dose/rtdose.dcm", "dose2/rtdose.dcm", "MR_small_implicit.dcm"],
    }
    for label, names in layout.items():
        for name in names:
            (root / label / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(get_testdata_file(Path(name).name), root / label / name)
    options = ImportOptions(shape=(8, 8, 8), reorient=False, normalization="none")
    preview = datasets.preview_import(root, options)
    assert preview.format == "dicom" and preview.shapes == {"15x10x10": 4}  # the dose grids: 15 frames
    assert preview.skipped["ct/CT_small"] == (
        "is a single 2D image (128x128), not a volume; a volume needs at least 3 slices")
    assert preview.skipped["ct/SC_rgb_small_odd"].startswith("is a single 2D image (3x3), not a volume")
    assert "DICOM intensities: DoseGridScaling was applied (RT dose in Gy) in 4 samples." in preview.notes
    result = datasets.import_dataset(root, "real", options)
    assert result.classes == {"ct": 2, "dose": 2}
    dose_file = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    dose = dose_file.pixel_array.astype(np.float32) * float(dose_file.DoseGridScaling)
    dataset = datasets.load_dataset("real")
    sources = [s["source"] for s in datasets.imported.manifest("real")["samples"]]
    np.testing.assert_allclose(np.asarray(dataset.x[sources.index("dose/dose")])[..., 0],
                               datasets.resample(dose, (8, 8, 8)), rtol=1e-5)
    # RLE Lossless decodes with pydicom's own handler: the same voxels as the uncompressed file.
    np.testing.assert_array_equal(dataset.x[sources.index("ct/dose_rle")], dataset.x[sources.index("dose/dose")])


# ------------------------------------------------------------------ NIfTI
def test_real_nibabel_files_with_4d_needing_a_volume_index(lab_home, tmp_path):
    import nibabel

    data_dir = Path(nibabel.__file__).parent / "tests" / "data"
    root = tmp_path / "nifti"
    for label, names in {"a": ["anatomical.nii", "standard.nii.gz"],
                         "b": ["reoriented_anat_moved.nii", "example4d.nii.gz", "resampled_anat_moved.nii"]}.items():
        (root / label).mkdir(parents=True)
        for name in names:
            shutil.copy(data_dir / name, root / label / name)
    options = ImportOptions(shape=(8, 8, 8), normalization="zscore", reorient=True)
    result = datasets.import_dataset(root, "brains", options)
    # resampled_anat_moved.nii ships with NaN outside the brain: read as 0 by default, with a note (issue 21;
    # it used to be skipped without a hint).
    assert result.classes == {"a": 2, "b": 2}
    assert result.skipped == {
        "b/example4d.nii.gz": (
            "is a 4D image of shape (128, 96, 24, 2); choose which of its 2 volumes to import "
            "with volume_index (--volume-index)"),
    }
    assert any(note.startswith("NaN voxels were replaced by 0 in 1 sample (e.g. b/resampled_anat_moved.nii: 153 voxels")
               for note in result.notes)
    x = np.asarray(datasets.load_dataset("brains").x)
    assert x.shape == (4, 8, 8, 8, 1) and np.allclose(x.mean(axis=(1, 2, 3, 4)), 0, atol=1e-4)
    options.volume_index = 1
    again = datasets.import_dataset(root, "brains", options, replace=True)
    assert again.samples == 5 and list(again.skipped) == []
    assert again.fingerprint != result.fingerprint and datasets.load_dataset("brains").x.shape[0] == 5
    # With nan_to_zero off the NaN file is skipped, and the reason says how to keep it.
    options.nan_to_zero = False
    strict = datasets.import_dataset(root, "brains", options, replace=True)
    assert strict.skipped == {"b/resampled_anat_moved.nii": (
        "holds 153 NaN voxels (nan_to_zero is off; turn it on to read them as 0)")}
    # A source where every file is 4D fails with one sentence naming the files and the reason.
    for label, name in (("a", "example4d.nii.gz"), ("b", "example_nifti2.nii.gz")):
        (tmp_path / "four" / label).mkdir(parents=True)
        shutil.copy(data_dir / name, tmp_path / "four" / label / name)
    with pytest.raises(DataError, match=r"all 2 .* skipped: a/example4d\.nii\.gz is a 4D image of shape \(128, 96, 24, 2\)"):
        datasets.import_dataset(tmp_path / "four", "four_d")
    assert _leftovers() == []


def test_nifti_scaling_is_honoured(lab_home, tmp_path):
    root = tmp_path / "scaled"
    raw = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    scans.write_nifti(root / "x" / "one.nii.gz", raw, slope=2.0, intercept=10.0)
    scans.write_nifti(root / "y" / "two.nii", raw[::-1].copy())
    datasets.import_dataset(root, "scaled", ImportOptions(normalization="none"))  # values as read
    x = np.asarray(datasets.load_dataset("scaled").x)[..., 0]
    np.testing.assert_array_equal(x[0], raw * 2.0 + 10.0)
    np.testing.assert_array_equal(x[1], raw[::-1])


# ------------------------------------------------------------------ arrays
def test_3d_mnist_hdf5_keeps_its_test_split(lab_home, tmp_path):
    arrays = scans.write_3d_mnist(tmp_path / "full_dataset_vectors.h5", train=60, test=20)
    preview = datasets.preview_import(tmp_path / "full_dataset_vectors.h5")
    assert preview.layout == "3d-mnist" and preview.splits == {"train": 60, "test": 20}
    assert preview.classes == {str(d): 8 for d in range(10)}
    result = datasets.import_dataset(tmp_path / "full_dataset_vectors.h5", "mnist3d")
    assert result.samples == 80 and result.volume_shape == [16, 16, 16, 1] and len(result.classes) == 10
    dataset = datasets.load_dataset("mnist3d")
    np.testing.assert_allclose(dataset.x[61][..., 0], arrays["X_test"][1].reshape(16, 16, 16), rtol=1e-6)
    assert dataset.class_names[dataset.y[61]] == str(arrays["y_test"][1])
    split = datasets.make_splits(dataset, 0.2, 0.15, seed=0)
    np.testing.assert_array_equal(split.test, np.arange(60, 80))  # the published test set, as given
    assert len(split.val) == 16 and set(split.val) | set(split.train) == set(range(60))
    assert np.bincount(dataset.y[split.val], minlength=10).min() >= 1  # carved out stratified
    info = {d["name"]: d for d in datasets.list_datasets()}["mnist3d"]
    assert info["imported"] and info["num_classes"] == 10 and info["splits"] == {"train": 60, "test": 20}
    assert "mnist3d" in datasets.dataset_names()


def test_generic_hdf5_asks_which_arrays_when_ambiguous(lab_home, tmp_path):
    import h5py

    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "two.h5", "w") as handle:
        handle["scans/t1"] = rng.random((6, 8, 8, 8))
        handle["scans/t2"] = rng.random((6, 8, 8, 8))
        handle["labels"] = np.array([0, 1] * 3)
    with pytest.raises(DataError, match=r"choose one of scans/t1 \(6, 8, 8, 8\), scans/t2 \(6, 8, 8, 8\) with x_key"):
        datasets.preview_import(tmp_path / "two.h5")
    result = datasets.import_dataset(tmp_path / "two.h5", "t2", ImportOptions(x_key="scans/t2"))
    assert result.classes == {"0": 3, "1": 3} and result.splits == {}
    with h5py.File(tmp_path / "two.h5") as handle:
        np.testing.assert_allclose(datasets.load_dataset("t2").x[3][..., 0], handle["scans/t2"][3], rtol=1e-6)


def test_medmnist_npz_keeps_its_three_splits(lab_home, tmp_path):
    arrays = scans.write_medmnist(tmp_path / "organmnist3d.npz", sizes=(24, 9, 9))
    result = datasets.import_dataset(tmp_path / "organmnist3d.npz", "organ", ImportOptions(normalization="none"))
    assert result.splits == {"train": 24, "val": 9, "test": 9} and result.classes == {"0": 14, "1": 14, "2": 14}
    dataset = datasets.load_dataset("organ")
    split = datasets.make_splits(dataset, 0.1, 0.1)
    np.testing.assert_array_equal(split.val, np.arange(24, 33))
    np.testing.assert_array_equal(split.test, np.arange(33, 42))
    np.testing.assert_array_equal(dataset.x[25][..., 0], arrays["val_images"][1])
    # Pickled object arrays are never loaded.
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="without pickled objects"):
        datasets.preview_import(tmp_path / "evil.npz")


# ------------------------------------------------------------------ labels, groups
def test_kaggle_tree_flair_series_and_zero_padded_ids(lab_home, tmp_path):
    root = tmp_path / "train"
    flair = {}
    for patient in (12, 7, 31, 40, 55):
        for offset, series in enumerate(("FLAIR", "T1w", "T1wCE", "T2w")):
            volume = scans.write_dicom_series(
                root / str(patient) / series, scans.ramp_slices(4, offset=1000 * offset + patient),
                description=series, patient=f"{patient:05d}", extension=".dcm" if offset % 2 else "",
            )
            if series == "FLAIR":
                flair[patient] = volume
    labels = tmp_path / "train_labels.csv"
    labels.write_text("BraTS21ID,MGMT_value\n00012,1\n00007,0\n00031,1\n00040,0\n00099,1\n")
    preview = datasets.preview_import(root, ImportOptions(labels_csv=str(labels)))
    assert preview.samples == 0 and "holds 4 series" in preview.skipped["12"]
    assert preview.unmatched_rows == ["00012", "00007", "00031", "00040", "00099"]
    options = ImportOptions(labels_csv=str(labels), series="flair", reorient=False, normalization="none")  # as stored, to compare
    preview = datasets.preview_import(root, options)
    assert preview.classes == {"0": 2, "1": 2} and preview.series == {"FLAIR": 4} and preview.groups == 4
    assert preview.unmatched_rows == ["00099"] and "55" in preview.skipped and "has no row" in preview.skipped["55"]
    result = datasets.import_dataset(root, "mgmt", options)
    dataset = datasets.load_dataset("mgmt")
    sources = [s["source"] for s in datasets.imported.manifest("mgmt")["samples"]]
    assert sources == ["12", "31", "40", "7"]
    for index, patient in enumerate((12, 31, 40, 7)):
        np.testing.assert_array_equal(np.asarray(dataset.x[index])[..., 0], flair[patient])
    assert result.unmatched_rows == ["00099"]
    t1 = datasets.preview_import(root, ImportOptions(labels_csv=str(labels), series="T1w"))
    assert t1.series == {"T1w": 4}  # the exact match wins over T1wCE


def test_csv_groups_and_splits_make_every_split_group_aware(lab_home, tmp_path):
    root = tmp_path / "nii"
    rows = ["file,label,patient,split"]
    for index in range(24):
        scans.write_nifti(root / f"scan{index:03d}.nii.gz", np.random.default_rng(index).random((6, 6, 6)).astype(np.float32))
        split = "test" if index >= 20 else ""
        rows.append(f"SCAN{index:03d}.nii.gz,{'ab'[index % 2]},patient-{index // 4 if index < 20 else index},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    result = datasets.import_dataset(root, "grouped", ImportOptions(labels_csv=str(tmp_path / "labels.csv")))
    assert result.samples == 24 and result.groups == 9 and result.splits == {"test": 4}
    dataset = datasets.load_dataset("grouped")
    split = datasets.make_splits(dataset, 0.2, 0.2, seed=3)
    np.testing.assert_array_equal(split.test, np.arange(20, 24))
    assert not set(dataset.groups[split.train]) & set(dataset.groups[split.val])
    assert len(split.val) in (4, 8)  # whole patients of four scans


def test_labels_csv_mistakes_name_the_fix(lab_home, tmp_path):
    scans.write_nifti(tmp_path / "s" / "a.nii", np.ones((4, 4, 4), np.float32))
    (tmp_path / "bad.csv").write_text("id,label,split\na,x,holdout\n")
    with pytest.raises(DataError, match="line 2 has split 'holdout'; use train, val or test"):
        datasets.preview_import(tmp_path / "s", ImportOptions(labels_csv=str(tmp_path / "bad.csv")))
    (tmp_path / "dup.csv").write_text("id,label\n007,x\n7,y\n")
    with pytest.raises(DataError, match="lists the id '7' twice"):
        datasets.preview_import(tmp_path / "s", ImportOptions(labels_csv=str(tmp_path / "dup.csv")))
    (tmp_path / "cols.csv").write_text("name,kind,colour\na,x,red\n")
    with pytest.raises(DataError, match="which column of cols.csv holds the label; its columns are name, kind, colour"):
        datasets.preview_import(tmp_path / "s", ImportOptions(labels_csv=str(tmp_path / "cols.csv")))


# ------------------------------------------------------------------ bad input, names, cancel
def test_bad_volumes_are_reported_and_one_class_is_refused(lab_home, tmp_path):
    root = tmp_path / "vols"
    good = np.random.default_rng(0).random((6, 6, 6)).astype(np.float32)
    scans.write_nifti(root / "a" / "good1.nii", good)
    scans.write_nifti(root / "a" / "nan.nii", np.where(good > 0.9, np.nan, good).astype(np.float32))
    scans.write_nifti(root / "b" / "flat.nii", np.zeros((6, 6, 6), np.float32))
    scans.write_nifti(root / "b" / "inf.nii", np.full((6, 6, 6), np.inf, np.float32))
    (root / "b" / "notes.bin").write_bytes(b"hello")
    # The refusal lists why class b lost every file, grouped by reason (issue 21), not one "e.g.".
    with pytest.raises(DataError, match=r"Only one class \('a'\) remains .* Class 'b' lost every sample: "
                                        r"b/notes.bin is not a NIfTI file \(.nii or .nii.gz\); b/flat.nii is empty "
                                        r"\(every voxel is 0\); b/inf.nii holds 216 NaN or infinite voxels\.$"):
        datasets.import_dataset(root, "bad")
    assert not datasets.imported.exists("bad") and _leftovers() == []
    scans.write_nifti(root / "b" / "good2.nii", good[::-1].copy())
    result = datasets.import_dataset(root, "bad", ImportOptions(nan_to_zero=False))
    assert result.samples == 2
    assert result.skipped["a/nan.nii"].startswith("holds ") and "NaN voxels (nan_to_zero is off" in result.skipped["a/nan.nii"]
    assert result.skipped["b/flat.nii"] == "is empty (every voxel is 0)"
    assert result.skipped["b/inf.nii"] == "holds 216 NaN or infinite voxels"
    assert "not a NIfTI file" in result.skipped["b/notes.bin"]


def test_shapes_that_differ_need_a_target_shape(lab_home, tmp_path):
    scans.write_nifti(tmp_path / "s" / "a" / "one.nii", np.random.default_rng(0).random((6, 6, 6)).astype(np.float32))
    scans.write_nifti(tmp_path / "s" / "b" / "two.nii", np.random.default_rng(1).random((5, 6, 7)).astype(np.float32))
    with pytest.raises(DataError, match=r"b/two.nii has shape 5x6x7 but a/one.nii has 6x6x6; .*--shape D H W"):
        datasets.import_dataset(tmp_path / "s", "shapes")
    assert _leftovers() == [] and not datasets.imported.exists("shapes")
    result = datasets.import_dataset(tmp_path / "s", "shapes", ImportOptions(shape=(8, 8, 8), window="brain"))
    assert result.volume_shape == [8, 8, 8, 1]
    x = np.asarray(datasets.load_dataset("shapes").x)
    assert 0 <= x.min() and x.max() <= 1


def test_names_options_and_existing_datasets(lab_home, tmp_path):
    arrays_file = tmp_path / "m.npz"
    scans.write_medmnist(arrays_file)
    for name, rule in (("digits3d", "built-in"), ("DIGITS3D", "built-in"), ("a b", "1 to 60 letters"),
                       ("x" * 61, "1 to 60"), ("bad\nname", "1 to 60"), ("../up", "1 to 60"), ("", "1 to 60")):
        with pytest.raises(DataError, match=rule):
            datasets.import_dataset(arrays_file, name)
    with pytest.raises(ConfigError, match="window is 'lungs'; use one of brain"):
        datasets.import_dataset(arrays_file, "ok", ImportOptions(window="lungs"))
    with pytest.raises(ConfigError, match="shape is"):
        datasets.import_dataset(arrays_file, "ok", ImportOptions(shape=(8, 8)))
    datasets.import_dataset(arrays_file, "ok")
    with pytest.raises(DataError, match="already exists; choose another name or replace it"):
        datasets.import_dataset(arrays_file, "ok")
    with pytest.raises(ConfigError, match="an imported dataset has no options"):
        datasets.load_dataset("ok", {"size": 8})
    datasets.delete_imported("ok")
    assert "ok" not in datasets.dataset_names() and _leftovers() == []
    with pytest.raises(DataError, match="There is no imported dataset named 'ok'"):
        datasets.delete_imported("ok")


def test_cancel_and_progress(lab_home, tmp_path):
    scans.write_3d_mnist(tmp_path / "f.h5", train=30, test=10)
    seen = []
    with pytest.raises(datasets.ImportCancelled, match="nothing was written"):
        datasets.import_dataset(tmp_path / "f.h5", "cancelled", progress=seen.append, cancel=lambda: len(seen) >= 5)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].total == 40
    assert not datasets.imported.exists("cancelled") and _leftovers() == [] and datasets.imported.names() == []


def test_reorientation_to_ras_for_nifti_and_dicom(lab_home, tmp_path):
    import nibabel

    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    root = tmp_path / "nii"
    (root / "a").mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(data, np.diag([-2.0, 2.0, 2.0, 1.0])), root / "a" / "flipped.nii")  # x runs R to L
    scans.write_nifti(root / "b" / "plain.nii", data)
    datasets.import_dataset(root, "ras", ImportOptions(reorient=True, normalization="none"))
    x = np.asarray(datasets.load_dataset("ras").x)[..., 0]
    np.testing.assert_array_equal(x[0], data[::-1])
    np.testing.assert_array_equal(x[1], data)
    # DICOM (slice, row, column) in LPS: columns run to the patient's left, rows to posterior.
    series = tmp_path / "dicom"
    # Two patients per class: one patient per class folder is refused as patient folders (issue 21).
    expected = {label + patient: scans.write_dicom_series(series / label / patient, scans.ramp_slices(3, 4, 5, offset=i),
                                                          patient=label + patient)
                for i, (label, patient) in enumerate(("ap", "aq", "bp", "bq"))}
    result = datasets.import_dataset(series, "ras_dicom", ImportOptions(normalization="none"))  # reorient is the default since issue 21
    assert result.volume_shape == [5, 4, 3, 1]
    assert "Orientation: every volume is reordered and flipped to RAS (reorient); 4 of 4 were in another " \
           "orientation (SPL 4)." in result.notes
    assert datasets.imported.manifest("ras_dicom")["orientations"] == {"SPL": 4}
    x = np.asarray(datasets.load_dataset("ras_dicom").x)[..., 0]
    np.testing.assert_array_equal(x[0], expected["ap"].transpose(2, 1, 0)[::-1, ::-1, :])
    # The preview tells the shape the volumes will have once reoriented.
    assert datasets.preview_import(series).shapes == {"5x4x3": 4}
    assert datasets.preview_import(series, ImportOptions(reorient=False)).shapes == {"3x4x5": 4}
