"""An import never produces a wrong dataset in silence (issue 21).

Each case is built from pydicom's and nibabel's shipped test files where they have one, or
written with pydicom / nibabel / numpy, and the exact outcome is checked: the right values,
or the right sentence (through the CLI: exit status 2, no traceback).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import datasets
from engine.datasets import ImportOptions
from engine.datasets.readers import MIN_SLICES
from engine.errors import DataError
from tests.cli_in_process import run_cli
from tests.datasets import hostile, scans

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _new_dicom(sop_class: str, patient: str, series_uid: str):
    """An empty DICOM dataset of ``sop_class`` with its file meta, an MR modality, a patient and a series."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.SeriesInstanceUID = "MR", patient, series_uid
    return ds


def write_slices(folder: Path, pixels: np.ndarray, *, positions=None, orientations=None, patient: str = "P1",
                 description: str = "T1", series_uid: str | None = None, **attributes) -> None:
    """One DICOM file per slice of ``pixels`` (k, rows, cols); ``attributes`` set on every file.

    Slice k lies at ``positions[k]`` (a z, or an (x, y, z)) with ``orientations[k]`` (6 cosines, axial by default).
    """
    from pydicom.uid import MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    for k, image in enumerate(pixels):
        ds = _new_dicom(MRImageStorage, patient, series_uid)
        ds.SeriesDescription, ds.StudyInstanceUID = description, generate_uid()
        ds.InstanceNumber = k + 1
        position = positions[k] if positions is not None else 2.5 * k
        ds.ImagePositionPatient = list(position) if isinstance(position, (tuple, list)) else [0.0, 0.0, float(position)]
        ds.ImageOrientationPatient = list(orientations[k] if orientations is not None else AXIAL)
        ds.PixelSpacing = [1.0, 1.0]
        ds.Rows, ds.Columns = image.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0 if image.dtype == np.uint16 else 1
        for name, value in attributes.items():
            setattr(ds, name, value)
        ds.PixelData = np.ascontiguousarray(image).tobytes()
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=True)


def ramp(count: int = 4, rows: int = 6, cols: int = 6, dtype=np.int16) -> np.ndarray:
    return scans.ramp_slices(count, rows, cols).astype(dtype)


def cli_refuses(capsys, *argv: str) -> str:
    """The one sentence `python -m engine import ...` prints for a refusal (exit 2, no traceback)."""
    code, out, err = run_cli(capsys, "import", *argv)
    assert code == 2, (out, err)
    last = err.strip().splitlines()[-1]  # progress lines may come first
    assert "Traceback" not in err and err.count("error: ") == 1 and last.startswith("error: "), err
    return last[len("error: "):]


def projections(count: int = 7) -> list[tuple[float, ...]]:
    """``count`` orientations rotated about the z axis: a projection (MIP) set, one image per angle."""
    angles = np.linspace(0, np.pi, count, endpoint=False)
    return [(float(np.cos(a)), float(np.sin(a)), 0.0, 0.0, 0.0, -1.0) for a in angles]


# ------------------------------------------------------------------ 1. geometry within a series
def test_a_projection_set_is_refused_with_its_real_reason_and_never_picked_as_largest(lab_home, tmp_path, capsys):
    root = tmp_path / "mra"
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            write_slices(root / label / patient / "mip", ramp(7), positions=[(0.0, 0.0, 0.0)] * 7,
                         orientations=projections(7), patient=label + patient, description="MIP")
    reason = "is 7 images in 7 different orientations: a localizer or projection set, not a volume"
    preview = datasets.preview_import(root)
    assert preview.skipped == {"a/p1": reason, "a/p2": reason, "b/p1": reason, "b/p2": reason}
    assert cli_refuses(capsys, str(root), "--name", "mra") == (
        f"Nothing usable remains to import: all 4 files or samples were skipped: 4 (a/p1, a/p2, b/p1 and 1 more) "
        f"{reason}.")
    # Next to a real 4-slice axial series, --series largest takes the volume, not the bigger projection set.
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            write_slices(root / label / patient / "axial", ramp(4), patient=label + patient, description="AX T1")
    result = datasets.import_dataset(root, "mra", ImportOptions(series="largest", reorient=False, normalization="none"))
    assert result.samples == 4 and result.skipped == {} and result.volume_shape == [4, 6, 6, 1]
    assert {s["series"] for s in datasets.imported.manifest("mra")["samples"]} == {"AX T1"}
    # A pattern that names the projection set gets the real reason too.
    assert datasets.preview_import(root, ImportOptions(series="MIP", normalization="none")).skipped["a/p1"] == reason


def test_a_tri_planar_localizer_repeated_positions_and_uneven_steps_are_named(lab_home, tmp_path):
    root = tmp_path / "geometry"
    sagittal, coronal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    write_slices(root / "a" / "localizer", ramp(3), orientations=[AXIAL, sagittal, coronal], positions=[0.0] * 3)
    write_slices(root / "a" / "repeated", ramp(4), positions=[0.0, 2.5, 2.5, 5.0])
    write_slices(root / "b" / "uneven", ramp(5), positions=[0.0, 2.5, 5.0, 6.0, 8.5])
    write_slices(root / "b" / "gap", ramp(5), positions=[0.0, 2.5, 5.0, 7.5, 15.0])
    skipped = datasets.preview_import(root).skipped
    assert skipped == {
        "a/localizer": "is 3 images in 3 different orientations: a localizer or projection set, not a volume",
        "a/repeated": ("has 1 image at the same position as another (4 images, 3 positions): a repeated "
                       "acquisition, a time series or several series under one UID, not one volume"),
        "b/uneven": ("has uneven slice spacing (1 to 2.5 mm along the slice normal); resampling it as evenly "
                     "spaced would distort it"),
        "b/gap": "has a gap of 7.5 mm between slices where 2.5 mm is usual; a slice is missing or was unreadable",
    }


def _enhanced_multiframe(path: Path, frames: np.ndarray, positions: list[float], slope: float, intercept: float) -> None:
    """An enhanced multi-frame file: geometry and rescale only in the functional groups."""
    from pydicom.dataset import Dataset
    from pydicom.uid import EnhancedMRImageStorage, generate_uid

    def item(**values) -> Dataset:
        dataset = Dataset()
        for name, value in values.items():
            setattr(dataset, name, value)
        return dataset

    ds = _new_dicom(EnhancedMRImageStorage, path.parent.name, generate_uid())
    ds.NumberOfFrames, (ds.Rows, ds.Columns) = len(frames), frames.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SharedFunctionalGroupsSequence = [item(
        PlaneOrientationSequence=[item(ImageOrientationPatient=list(AXIAL))],
        PixelMeasuresSequence=[item(PixelSpacing=[1.0, 1.0], SliceThickness=2.0)],
        PixelValueTransformationSequence=[item(RescaleSlope=slope, RescaleIntercept=intercept, RescaleType="US")],
    )]
    ds.PerFrameFunctionalGroupsSequence = [
        item(PlanePositionSequence=[item(ImagePositionPatient=[0.0, 0.0, z])]) for z in positions]
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe_is_ordered_and_rescaled_from_its_functional_groups(lab_home, tmp_path):
    frames = ramp(4)
    positions = [4.0, 0.0, 6.0, 2.0]  # stored out of order
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            _enhanced_multiframe(tmp_path / "mf" / label / patient / "volume.dcm", frames, positions, 2.0, -10.0)
    result = datasets.import_dataset(tmp_path / "mf", "mf", ImportOptions(reorient=False, normalization="none"))
    x = np.asarray(datasets.load_dataset("mf").x)[..., 0]
    np.testing.assert_array_equal(x[0], frames[np.argsort(positions)] * 2.0 - 10.0)
    assert "DICOM intensities: RescaleSlope / RescaleIntercept were applied (for CT: Hounsfield units) in 4 samples." \
        in result.notes
    # The same frames at one position (a time series in one file) are not a volume.
    _enhanced_multiframe(tmp_path / "dyn" / "a" / "p1" / "volume.dcm", frames, [0.0] * 4, 1.0, 0.0)
    _enhanced_multiframe(tmp_path / "dyn" / "b" / "p1" / "volume.dcm", frames, [0.0] * 4, 1.0, 0.0)
    assert datasets.preview_import(tmp_path / "dyn").skipped["a/p1"].startswith(
        "has 3 images at the same position as another (4 images, 1 position): a repeated acquisition, a time series")


# ------------------------------------------------------------------ 2. one class is refused
def test_patient_folders_are_not_classes(lab_home, tmp_path, capsys):
    one_class = tmp_path / "upload" / "tumour"
    for patient in ("patient01", "patient02", "patient03"):
        write_slices(one_class / patient / "t1", ramp(4), patient=patient)
    sentence = cli_refuses(capsys, str(tmp_path / "upload"), "--name", "tumour")
    assert sentence == (
        "Each of the folders under tumour (patient01, patient02, patient03) holds a single scan: tumour is the only "
        "folder at the top, so it would be a single class, and the folders in it look like patient or series "
        "folders, not classes; put them in one folder per class (e.g. tumour/<class>/patient01), or give a labels "
        "CSV (--labels) with each one's class.")
    # The same with NIfTI subject folders.
    for patient in ("sub-01", "sub-02"):
        scans.write_nifti(tmp_path / "nii" / "ad" / patient / "t1.nii.gz", np.ones((4, 4, 4), np.float32))
    assert "holds a single scan: ad is the only folder at the top" in cli_refuses(capsys, str(tmp_path / "nii"),
                                                                                   "--name", "x")
    # Patient folders, each holding its DICOM series, straight under the root.
    for patient in ("p1", "p2"):
        for series in ("t1", "t2"):
            write_slices(tmp_path / "patients" / patient / series, ramp(4), patient=patient, description=series)
    with pytest.raises(DataError, match=r"^Each of the folders under patients \(p1, p2\) holds the scans of one "
                                        r"patient \(DICOM PatientID\): the folders under patients look like patient "
                                        r"folders, not classes; put them in one folder per class"):
        datasets.preview_import(tmp_path / "patients")
    # One series each (patient folders holding the series' files): a single scan per folder.
    for patient in ("p1", "p2"):
        write_slices(tmp_path / "series" / patient, ramp(4), patient=patient)
    with pytest.raises(DataError, match=r"^Each of the folders under series \(p1, p2\) holds a single scan: the "
                                        r"folders under series look like patient or series folders"):
        datasets.preview_import(tmp_path / "series")
    # Class folders that each hold one patient's scans (DICOM PatientID) are patient folders too.
    for label in ("x", "y"):
        for visit in ("v1", "v2"):
            write_slices(tmp_path / "visits" / label / visit, ramp(4), patient=f"patient-{label}")
    with pytest.raises(DataError, match=r"holds the scans of one patient \(DICOM PatientID\)"):
        datasets.preview_import(tmp_path / "visits")
    # A single class folder next to nothing else is one class.
    (tmp_path / "single" / "tumour").mkdir(parents=True)
    (tmp_path / "single" / "notes.txt").write_text("x")
    scans.write_nifti(tmp_path / "single" / "tumour" / "a.nii", np.ones((4, 4, 4), np.float32))
    with pytest.raises(DataError, match=r"single holds one class folder \('tumour'\); a classifier needs at least two"):
        datasets.preview_import(tmp_path / "single")


def test_the_class_layout_is_recorded_in_the_preview(lab_home, tmp_path):
    for label in ("ad", "cn"):
        for patient in ("p1", "p2", "p3"):
            write_slices(tmp_path / "tree" / label / patient, ramp(4), patient=label + patient)
    preview = datasets.preview_import(tmp_path / "tree")
    assert preview.layout == "class-folders" and preview.classes == {"ad": 3, "cn": 3}
    assert preview.notes[0] == "Class layout: one folder per class under tree (2 classes: ad 3, cn 3)."
    scans.write_medmnist(tmp_path / "organ.npz")
    assert datasets.preview_import(tmp_path / "organ.npz").notes[0] == (
        "Class layout: the labels stored in organ.npz (medmnist layout).")


# ------------------------------------------------------------------ 3. orientation across a dataset
def test_nifti_of_different_orientations_come_out_in_ras_and_the_preview_says_so(lab_home, tmp_path, capsys):
    import nibabel

    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    for label in ("a", "b"):
        for index in range(2):
            affine = lps if index else np.eye(4)
            stored = data[::-1, ::-1] if index else data  # the same anatomy, stored left-posterior
            (tmp_path / "mixed" / label).mkdir(parents=True, exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(stored), affine),
                         tmp_path / "mixed" / label / f"s{index}.nii")
    preview = datasets.preview_import(tmp_path / "mixed")
    note = ("Orientation: every volume is reordered and flipped to RAS (reorient); 2 of 4 were in another "
            "orientation (RAS 2, LPS 2).")
    assert note in preview.notes
    result = datasets.import_dataset(tmp_path / "mixed", "mixed")
    x = np.asarray(datasets.load_dataset("mixed").x)[..., 0]
    for volume in x:
        np.testing.assert_array_equal(volume, data)
    manifest = datasets.imported.manifest("mixed")
    assert note in result.notes and note in manifest["notes"]
    assert manifest["orientations"] == {"RAS": 2, "LPS": 2} and manifest["preprocessing"]["reorient"] is True
    assert cli_refuses(capsys, str(tmp_path / "mixed"), "--name", "m2", "--no-reorient") == (
        "The scans come in 2 orientations (RAS 2, LPS 2); with reorient off their axes would not line up between "
        "samples: leave reorient on (the default; --reorient) to bring every volume to RAS.")


def test_nibabels_shipped_orientations_agree_with_as_closest_canonical(lab_home, tmp_path):
    import nibabel

    data_dir = Path(nibabel.__file__).parent / "tests" / "data"
    names = {"a": ["anatomical.nii", "reoriented_anat_moved.nii"], "b": ["anatomical.nii", "reoriented_anat_moved.nii"]}
    for label, files in names.items():
        for name in files:
            (tmp_path / "nib" / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(data_dir / name, tmp_path / "nib" / label / name)
    orientations = {"".join(nibabel.aff2axcodes(nibabel.load(data_dir / n).affine)) for n in names["a"]}
    assert len(orientations) == 2  # the two files really differ
    datasets.import_dataset(tmp_path / "nib", "nib", ImportOptions(shape=(8, 8, 8), normalization="none"))
    x = np.asarray(datasets.load_dataset("nib").x)[..., 0]
    sources = [s["source"] for s in datasets.imported.manifest("nib")["samples"]]
    for name in names["a"]:
        canonical = nibabel.as_closest_canonical(nibabel.load(data_dir / name)).get_fdata().astype(np.float32)
        np.testing.assert_allclose(x[sources.index(f"a/{name}")], datasets.resample(canonical, (8, 8, 8)),
                                   rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ 4. intensity transforms
def test_monochrome1_and_2_of_one_scene_agree_and_the_notes_say_what_was_applied(lab_home, tmp_path):
    stored = (scans.ramp_slices(4, 6, 6) % 4096).astype(np.uint16)
    for label, patient in (("a", "p1"), ("b", "p2")):
        write_slices(tmp_path / "cr" / label / f"{patient}-m2", stored, BitsStored=12, HighBit=11, patient=patient + "m2")
        write_slices(tmp_path / "cr" / label / f"{patient}-m1", (4095 - stored).astype(np.uint16), BitsStored=12,
                     HighBit=11, PhotometricInterpretation="MONOCHROME1", patient=patient + "m1")
    result = datasets.import_dataset(tmp_path / "cr", "cr", ImportOptions(reorient=False, normalization="none"))
    x = np.asarray(datasets.load_dataset("cr").x)[..., 0]
    sources = [s["source"] for s in datasets.imported.manifest("cr")["samples"]]
    np.testing.assert_array_equal(x[sources.index("a/p1-m1")], stored.astype(np.float32))
    np.testing.assert_array_equal(x[sources.index("a/p1-m2")], stored.astype(np.float32))
    assert ("DICOM intensities: MONOCHROME1 images were inverted within their stored range, so that a higher value "
            "is brighter in every sample, like MONOCHROME2 in 2 samples.") in result.notes


def test_the_modality_lut_and_rescale_are_applied_like_pydicom(lab_home, tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_modality_lut

    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 16]
    lut.add_new(0x00283006, "US", [int(v) for v in (np.arange(256) ** 2 // 4)])  # LUTData
    lut.ModalityLUTType = "US"
    stored = (scans.ramp_slices(4, 6, 6) % 256).astype(np.uint16)
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            write_slices(tmp_path / "lut" / label / patient, stored, BitsStored=8, HighBit=7,
                         ModalityLUTSequence=[lut], patient=label + patient)
        write_slices(tmp_path / "lut" / label / "ct", scans.ramp_slices(4, 6, 6), RescaleSlope=2.0,
                     RescaleIntercept=-1024.0, patient=label + "ct")
    result = datasets.import_dataset(tmp_path / "lut", "lut", ImportOptions(reorient=False, normalization="none"))
    x = np.asarray(datasets.load_dataset("lut").x)[..., 0]
    sources = [s["source"] for s in datasets.imported.manifest("lut")["samples"]]
    carrier = Dataset()
    carrier.ModalityLUTSequence = [lut]
    np.testing.assert_array_equal(x[sources.index("a/p1")], apply_modality_lut(stored, carrier).astype(np.float32))
    np.testing.assert_array_equal(x[sources.index("b/ct")], scans.ramp_slices(4, 6, 6) * 2.0 - 1024.0)
    assert "DICOM intensities: the modality LUT (pydicom's apply_modality_lut) was applied in 4 samples." in result.notes
    assert ("DICOM intensities: RescaleSlope / RescaleIntercept were applied (for CT: Hounsfield units) in 2 samples."
            in result.notes)


def test_palette_colour_is_refused_with_a_sentence(lab_home, tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    palette = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            folder = tmp_path / "us" / label / patient
            folder.mkdir(parents=True)
            for k in range(3):  # a 3-slice series of the real palette ultrasound image
                palette.ImagePositionPatient, palette.ImageOrientationPatient = [0, 0, 2.0 * k], list(AXIAL)
                palette.SOPInstanceUID = pydicom.uid.generate_uid()
                palette.SeriesInstanceUID = f"1.2.3.{label}.{patient}".replace("a", "1").replace("b", "2").replace("p", "")
                palette.save_as(folder / f"{k}.dcm")
    skipped = datasets.preview_import(tmp_path / "us").skipped
    assert skipped["a/p1/0.dcm"] == ("is PALETTE COLOR: its pixel values index a colour table (e.g. ultrasound "
                                     "Doppler), they are not intensities, so it is not imported")
    assert len(skipped) == 12


# ------------------------------------------------------------------ 5. 2D is not 3D
def test_single_2d_dicom_images_and_short_series_are_not_volumes(lab_home, tmp_path, capsys):
    from pydicom.data import get_testdata_file

    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            (tmp_path / "xray" / label / patient).mkdir(parents=True)
            shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "xray" / label / patient / "image.dcm")
    assert cli_refuses(capsys, str(tmp_path / "xray"), "--name", "x", "--shape", "8", "16", "16") == (
        "Nothing usable remains to import: all 4 files or samples were skipped: 4 (a/p1, a/p2, b/p1 and 1 more) "
        f"is a single 2D image (128x128), not a volume; a volume needs at least {MIN_SLICES} slices.")
    for label in ("a", "b"):
        write_slices(tmp_path / "short" / label / "p1", ramp(MIN_SLICES - 1), patient=label)
    assert datasets.preview_import(tmp_path / "short").skipped["a/p1"] == (
        f"has only {MIN_SLICES - 1} slices of 6x6; a volume needs at least {MIN_SLICES}")


def test_an_ultrasound_cine_loop_is_not_a_volume(lab_home, tmp_path):
    from pydicom.data import get_testdata_file

    for label in ("a", "b"):
        (tmp_path / "us" / label).mkdir(parents=True)
        shutil.copy(get_testdata_file("examples_ybr_color.dcm"), tmp_path / "us" / label / "cine.dcm")
    assert datasets.preview_import(tmp_path / "us").skipped == {
        f"{label}/cine.dcm": ("is a cine loop (30 frames in time, e.g. ultrasound or angiography), not a volume: its "
                              "frames are not slices") for label in ("a", "b")}


def test_2d_rgb_arrays_and_multi_label_arrays_are_refused(lab_home, tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pathmnist.npz", **{f"{split}_images": rng.integers(0, 255, (6, 28, 28, 3), dtype=np.uint8)
                                            for split in ("train", "val", "test")},
             **{f"{split}_labels": (np.arange(6) % 3).reshape(-1, 1) for split in ("train", "val", "test")})
    assert cli_refuses(capsys, str(tmp_path / "pathmnist.npz"), "--name", "path") == (
        "pathmnist.npz:train_images holds 2D colour images of 28x28x3 (height x width x RGB, like MedMNIST 2D's "
        "pathmnist), not volumes; import a 3D dataset (e.g. MedMNIST 3D's organmnist3d).")
    np.savez(tmp_path / "grey.npz", x=rng.random((6, 28, 28)), y=np.arange(6) % 2)
    assert "holds 2D images of 28x28, not volumes" in cli_refuses(capsys, str(tmp_path / "grey.npz"), "--name", "g")
    labels = (rng.random((8, 14)) > 0.7).astype(np.int64)
    labels[0, :2] = 1  # at least one row with two findings
    np.savez(tmp_path / "chest.npz", x=rng.random((8, 8, 8, 8)), y=labels)
    several = int(np.count_nonzero(labels.sum(axis=1) > 1))
    assert cli_refuses(capsys, str(tmp_path / "chest.npz"), "--name", "chest") == (
        f"chest.npz:y has 14 label columns and {several} of its 8 rows mark more than one (multi-label, like "
        "ChestMNIST's 14 findings); a classifier here needs one class per sample: give an (N,) array of classes with "
        "y_key (--y-key).")
    # A true one-hot array is still read, and the note says how.
    np.savez(tmp_path / "onehot.npz", x=rng.random((6, 8, 8, 8)), y=np.eye(3, dtype=np.int64)[np.arange(6) % 3])
    preview = datasets.preview_import(tmp_path / "onehot.npz")
    assert preview.classes == {"0": 2, "1": 2, "2": 2}
    assert "onehot.npz:y is one-hot (3 columns); each row's class is its marked column." in preview.notes


# ------------------------------------------------------------------ 6. compressed DICOM
def _series_from_one_file(source: str, folder: Path, copies: int = 3) -> None:
    """``copies`` of one real (compressed) file as a series: new positions and UIDs, pixel data untouched."""
    import pydicom

    folder.mkdir(parents=True)
    dataset = pydicom.dcmread(source)
    dataset.SeriesInstanceUID = pydicom.uid.generate_uid()
    for k in range(copies):
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.ImagePositionPatient, dataset.ImageOrientationPatient = [0.0, 0.0, 3.0 * k], list(AXIAL)
        dataset.PixelSpacing = dataset.get("PixelSpacing") or [1.0, 1.0]
        dataset.save_as(folder / f"{k}.dcm")


def test_jpeg_ls_reads_exactly_and_12_bit_jpeg_says_what_to_install(lab_home, tmp_path):
    from pydicom.data import get_testdata_file

    for label, name in (("ls", "MR_small_jpeg_ls_lossless.dcm"), ("plain", "MR_small.dcm")):
        for patient in ("p1", "p2"):
            _series_from_one_file(get_testdata_file(name), tmp_path / "mr" / label / patient)
    datasets.import_dataset(tmp_path / "mr", "mr", ImportOptions(reorient=False, normalization="none"))
    x = np.asarray(datasets.load_dataset("mr").x)
    np.testing.assert_array_equal(x[0], x[2])  # JPEG-LS lossless (pylibjpeg) == the uncompressed file
    import pydicom

    np.testing.assert_array_equal(x[0][0, ..., 0], pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array)
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            _series_from_one_file(get_testdata_file("JPEG-lossy.dcm"), tmp_path / "jpeg12" / label / patient)
    with pytest.raises(DataError) as refused:
        datasets.import_dataset(tmp_path / "jpeg12", "jpeg12")
    assert "12-bit JPEG (JPEG Extended) is read reliably by GDCM: install GDCM with `pip install python-gdcm`" in str(
        refused.value)


def test_a_missing_decoder_is_named_by_its_pip_package(monkeypatch):
    import pydicom.pixels
    from pydicom.uid import JPEGLSLossless

    from engine.datasets.readers import _dicom

    class Unavailable:
        is_available = False
        missing_dependencies = ["gdcm - requires gdcm>=3.0.10", "pyjpegls - requires numpy and pyjpegls>=1.2"]

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: Unavailable())
    assert _dicom._decoder_problem(JPEGLSLossless) == (
        "is compressed as JPEG-LS Lossless Image Compression and no installed decoder reads it "
        "(`pip install python-gdcm` or `pip install pyjpegls`)")


# ------------------------------------------------------------------ 7. tiny hostile files
def test_tiny_hostile_files_are_refused_from_their_headers(lab_home, tmp_path, capsys):
    for label in ("a", "b"):
        hostile.nifti_header_only(tmp_path / "nii" / label / "huge.nii")
    assert cli_refuses(capsys, str(tmp_path / "nii"), "--name", "n") == (
        "Nothing usable remains to import: all 2 files or samples were skipped: 2 (a/huge.nii, b/huge.nii) declares "
        "1200x1200x1200 = 1,728,000,000 voxels, more than the 268,435,456 an import reads per volume; it was not read.")
    for label in ("a", "b"):
        hostile.nifti_header_only(tmp_path / "short" / label / "s.nii", shape=(64, 64, 64))
    assert datasets.preview_import(tmp_path / "short").skipped["a/s.nii"] == (
        "declares 64x64x64 voxels (1,048,576 bytes) but the file holds 1,024 bytes: truncated or a damaged header; "
        "it was not read")
    hostile.npz_claiming(tmp_path / "claims.npz")
    assert cli_refuses(capsys, str(tmp_path / "claims.npz"), "--name", "c", "--dry-run") == (
        "claims.npz was refused: its array 'x' declares shape (25000, 1000, 1000) (100,000,000,000 bytes) but holds "
        "4,224 bytes (a damaged or hostile header); nothing was read.")
    hostile.npz_bomb(tmp_path / "bomb.npz")
    assert (tmp_path / "bomb.npz").stat().st_size < 3 * 1024**2
    for extra in (("--dry-run",), ()):
        assert cli_refuses(capsys, str(tmp_path / "bomb.npz"), "--name", "b", *extra) == (
            "bomb.npz was refused: its array 'x.npy' is compressed 1,029 times, more than 200 (a zip bomb); "
            "nothing was read.")
    hostile.hdf5_declared(tmp_path / "declared.h5")
    assert cli_refuses(capsys, str(tmp_path / "declared.h5"), "--name", "h", "--x-key", "x", "--y-key", "y") == (
        "declared.h5:x: each row declares 1200x1200x1200x1 = 1,728,000,000 voxels, more than the 268,435,456 an "
        "import reads per volume; it was not read.")


def test_a_dicom_header_declaring_more_than_its_pixel_data_is_refused(lab_home, tmp_path):
    for label in ("a", "b"):
        write_slices(tmp_path / "lie" / label / "p1", ramp(3), Rows=2000, Columns=2000, patient=label)
        write_slices(tmp_path / "lie" / label / "p2", ramp(3), NumberOfFrames=60000, Rows=600, Columns=600,
                     patient=label + "2")
    skipped = datasets.preview_import(tmp_path / "lie").skipped
    assert skipped["a/p1/slice000.dcm"].startswith(
        "declares 1 frame(s) of 2000x2000 (8,000,000 bytes of pixel data) but the file holds ")
    assert skipped["a/p2/slice000.dcm"] == (
        "declares 60000x600x600x1 = 21,600,000,000 voxels, more than the 268,435,456 an import reads per volume; "
        "it was not read")


def test_npz_volumes_are_streamed_a_row_at_a_time_with_the_right_values(lab_home, tmp_path):
    """Rows read from the zip member (compressed, big-endian, out of order) equal numpy's own load."""
    from engine.datasets.readers import _npz

    rng = np.random.default_rng(0)
    x = rng.random((10, 5, 6, 7)).astype(">f8")
    np.savez_compressed(tmp_path / "c.npz", x=x, y=np.arange(10) % 2)
    scan = _npz.scan(tmp_path / "c.npz", None)
    try:
        for index in (0, 3, 2, 9, 1):
            np.testing.assert_array_equal(scan.candidates[index].read().voxels[..., 0], x[index].astype(np.float32))
    finally:
        scan.close()
    fortran = np.asfortranarray(rng.random((4, 5, 6, 7)))
    np.savez(tmp_path / "f.npz", x=fortran, y=np.arange(4) % 2)  # Fortran order: read whole (under the cap)
    result = datasets.import_dataset(tmp_path / "f.npz", "fortran")
    assert result.samples == 4
    np.testing.assert_array_equal(np.asarray(datasets.load_dataset("fortran").x)[2][..., 0],
                                  fortran[2].astype(np.float32))


# ------------------------------------------------------------------ 8. sentences that show the cause
def test_kaggle_point_clouds_are_refused_in_one_line(lab_home, tmp_path, capsys):
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "train_point_clouds.h5", "w") as handle:
        for index in range(300):
            group = handle.create_group(str(index))
            group["img"] = rng.random((30, 30))
            group["points"] = rng.random((int(rng.integers(20, 40)), 3))
            group.attrs["label"] = index % 10
    assert cli_refuses(capsys, str(tmp_path / "train_point_clouds.h5"), "--name", "pc") == (
        "train_point_clouds.h5: this file holds point clouds (one group per sample), not voxel volumes; for 3D MNIST "
        "import full_dataset_vectors.h5 (the voxelised 16^3 version).")


def test_skips_are_grouped_by_reason_not_one_example(lab_home, tmp_path, capsys):
    from pydicom.data import get_testdata_file

    root = tmp_path / "mixed"
    (root / "a").mkdir(parents=True)
    (root / "a" / "Thumbs.db").write_bytes(b"\0" * 64)
    for patient in ("p1", "p2", "p3", "p4"):
        (root / "a" / patient).mkdir()
        shutil.copy(get_testdata_file("MR_small.dcm"), root / "a" / patient / "x.dcm")
    write_slices(root / "b" / "p1", ramp(4))
    write_slices(root / "b" / "p2", ramp(4), patient="P2")
    sentence = cli_refuses(capsys, str(root), "--name", "m")
    assert sentence == (
        "This class layout cannot be trained: all 2 samples have the class 'b', and a classifier needs two or more; "
        "give a labels CSV (one row per scan: its id and its class), or put the scans of each class in a folder named "
        "after the class. Class 'a' lost every sample: 4 (a/p1, a/p2, a/p3 and 1 more) is a single 2D "
        "image (64x64), not a volume; a volume needs at least 3 slices; a/Thumbs.db is not a DICOM file (no 'DICM' "
        "marker and no .dcm extension).")


def test_nan_background_is_read_as_zero_with_a_note_or_skipped_when_asked(lab_home, tmp_path, capsys):
    volume = np.random.default_rng(0).random((6, 6, 6)).astype(np.float32)
    background = volume.copy()
    background[volume < 0.2] = np.nan
    for label in ("a", "b"):
        scans.write_nifti(tmp_path / "nan" / label / "brain.nii.gz", background)
        for copy in ("plain", "plain2", "plain3"):  # three per class survive the skip: enough for the splits
            scans.write_nifti(tmp_path / "nan" / label / f"{copy}.nii.gz", volume)
    count = int(np.isnan(background).sum())
    result = datasets.import_dataset(tmp_path / "nan", "nan")
    x = np.asarray(datasets.load_dataset("nan").x)[..., 0]
    np.testing.assert_array_equal(x[0], np.nan_to_num(background, nan=0.0))
    assert (f"NaN voxels were replaced by 0 in 2 samples (e.g. a/brain.nii.gz: {count} voxels; NIfTI files often "
            "store the background as NaN); set nan_to_zero off (--keep-nan) to skip such samples instead.") in result.notes
    code, out, err = run_cli(capsys, "import", str(tmp_path / "nan"), "--name", "nan2", "--keep-nan")
    assert code == 0, err
    assert f"a/brain.nii.gz: holds {count} NaN voxels (nan_to_zero is off; turn it on to read them as 0)" in out
