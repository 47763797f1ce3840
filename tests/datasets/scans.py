"""Tiny scan files for the import tests: DICOM series written by pydicom, NIfTI by nibabel, HDF5, NPZ."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np


def write_dicom_series(folder: Path, slices: np.ndarray, *, positions: list[float] | None = None,
                       description: str = "T1", patient: str = "P1", slope: float = 1.0, intercept: float = 0.0,
                       explicit: bool = False, extension: str = "", shuffle_seed: int | None = 0,
                       series_uid: str | None = None, modality: str = "MR") -> np.ndarray:
    """Write ``slices`` (k, rows, cols) int16 as one series; returns the rescaled volume in anatomical order.

    Slice k lies at z = positions[k]; InstanceNumber counts the other way round, so
    only ImagePositionPatient gives the right order. Files are written in a shuffled
    order under random names.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid

    storage = CTImageStorage if modality == "CT" else MRImageStorage

    folder.mkdir(parents=True, exist_ok=True)
    count = len(slices)
    positions = list(positions if positions is not None else [2.5 * k for k in range(count)])
    series_uid = series_uid or generate_uid()
    order = list(range(count))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    for written, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = storage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = storage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.SeriesDescription = modality, patient, description
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), series_uid
        ds.InstanceNumber = count - k
        ds.ImagePositionPatient = [0.0, 0.0, float(positions[k])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 2.5
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.Rows, ds.Columns = slices.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(slices[k], dtype=np.int16).tobytes()
        name = f"{random.Random(written).getrandbits(40):010x}{extension}" if shuffle_seed is not None else f"slice{k:03d}{extension}"
        ds.save_as(folder / name, enforce_file_format=True)
    order_by_z = np.argsort(positions)
    return slices[order_by_z].astype(np.float32) * slope + intercept


def ramp_slices(count: int, rows: int = 8, cols: int = 8, offset: int = 0) -> np.ndarray:
    """Slices that differ everywhere: slice k, row i, column j holds offset + 100 k + 8 i + j."""
    k, i, j = np.meshgrid(np.arange(count), np.arange(rows), np.arange(cols), indexing="ij")
    return (offset + 100 * k + 8 * i + j).astype(np.int16)


def write_nifti(path: Path, data: np.ndarray, slope: float | None = None, intercept: float | None = None) -> None:
    import nibabel

    image = nibabel.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    if slope is not None:
        image.header.set_slope_inter(slope, intercept or 0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(image, path)


def write_3d_mnist(path: Path, train: int = 40, test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """The layout of full_dataset_vectors.h5: X_train (N, 4096) float, y_train (N,) int, X_test, y_test."""
    import h5py

    rng = np.random.default_rng(seed)
    arrays = {
        "X_train": rng.random((train, 4096)), "y_train": np.arange(train) % 10,
        "X_test": rng.random((test, 4096)), "y_test": np.arange(test) % 10,
    }
    with h5py.File(path, "w") as handle:
        for name, array in arrays.items():
            handle.create_dataset(name, data=array)
    return arrays


def write_medmnist(path: Path, sizes=(24, 8, 8), edge: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """The MedMNIST 3D layout: {split}_images (N, D, H, W) uint8 and {split}_labels (N, 1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, size in zip(("train", "val", "test"), sizes):
        arrays[f"{split}_images"] = rng.integers(0, 255, (size, edge, edge, edge), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(size) % 3).reshape(-1, 1)
    np.savez(path, **arrays)
    return arrays


def ct_patient_slices(rng: np.random.Generator, lesion: bool, count: int = 8, edge: int = 16) -> np.ndarray:
    """Stored values of a tiny CT series (HU = stored - 1024 with RescaleIntercept -1024): air around a
    soft-tissue body (about 40 HU), a bright spot (about 120 HU) in lesion patients, noise of 20 HU."""
    z, y, x = np.mgrid[0:count, 0:edge, 0:edge]
    centre = (edge - 1) / 2
    hu = np.where((y - centre) ** 2 + (x - centre) ** 2 <= (0.4 * edge) ** 2, 40.0, -1000.0)
    if lesion:
        hu = np.where((z - count / 2) ** 2 + (y - centre) ** 2 + (x - centre - 2) ** 2 <= 6.0, 160.0, hu)
    hu = hu + rng.normal(0, 20, hu.shape)
    return np.round(hu + 1024).astype(np.int16)


def write_ct_patients(root: Path, diagnoses: dict[str, str], seed: int = 0, count: int = 8,
                      edge: int = 16) -> None:
    """One folder per patient (``root/<patient>/``) holding a CT series; ``diagnoses``: patient -> label,
    a label containing 'lesion' gets a bright spot."""
    rng = np.random.default_rng(seed)
    for patient, label in diagnoses.items():
        write_dicom_series(root / patient, ct_patient_slices(rng, "lesion" in label, count, edge), patient=patient,
                           description="CT HEAD", slope=1.0, intercept=-1024.0, modality="CT", shuffle_seed=None)
