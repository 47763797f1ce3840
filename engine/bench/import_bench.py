"""``python -m engine bench import``: a DICOM import against reading the same files with pydicom alone.

In one invocation it writes ``series`` CT series (``slices`` files of ``size`` x ``size`` each, two class
folders) into a scratch folder, then times, alternating the order over ``repeats``:

- ``pydicom``: every file read with ``pydicom.dcmread(...).pixel_array`` in one process (the loop a
  script would write, with no checks, ordering, rescaling or resampling);
- ``engine``: ``import_dataset`` of the folder: header scan, series ordering and geometry checks, then
  every series read, rescaled and windowed in a process pool (``importing.import_workers``), written to
  the dataset's cache;
- ``engine 1 worker``: the same import with ``CONV3D_LAB_IMPORT_WORKERS=1`` (the pool's share).

Figures are medians over the repeats (files/s, MB/s of DICOM read); the JSON keys are stable
(``IMPORT_BENCH_VERSION`` changes when one does).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

IMPORT_BENCH_VERSION = 1
DEFAULTS = {"series": 24, "slices": 48, "size": 128, "repeats": 2}  # 18.9 M voxels: above POOL_MIN_VOXELS


def write_series(root: Path, series: int, slices: int, size: int, seed: int = 0) -> int:
    """``series`` CT series of ``slices`` x ``size`` x ``size`` (int16, HU = stored - 1024) under
    ``root/<normal|lesion>/patient-NNN/``; returns the bytes written."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    written = 0
    z, y, x = np.mgrid[0:slices, 0:size, 0:size]
    centre = (size - 1) / 2
    body = np.where((y - centre) ** 2 + (x - centre) ** 2 <= (0.4 * size) ** 2, 40.0, -1000.0)
    for index in range(series):
        label = "lesion" if index % 2 else "normal"
        hu = body.copy()
        if label == "lesion":
            hu = np.where((z - slices / 2) ** 2 + (y - centre) ** 2 + (x - centre) ** 2 <= (size / 8) ** 2, 160.0, hu)
        stored = np.round(hu + rng.normal(0, 20, hu.shape) + 1024).astype(np.int16)
        folder = root / label / f"patient-{index:03d}"
        folder.mkdir(parents=True)
        series_uid, study_uid = generate_uid(), generate_uid()
        for k in range(slices):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
            ds.Modality, ds.PatientID, ds.SeriesDescription = "CT", f"patient-{index:03d}", "CT HEAD"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.5
            ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
            ds.Rows, ds.Columns = size, size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
            path = folder / f"slice-{k:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            written += path.stat().st_size
    return written


def read_with_pydicom(root: Path) -> int:
    """Every DICOM file under ``root`` read with pydicom, pixels decoded; returns the voxels read."""
    import pydicom

    voxels = 0
    for path in sorted(root.rglob("*.dcm")):
        voxels += int(pydicom.dcmread(path).pixel_array.size)
    return voxels


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run_import_bench(series: int, slices: int, size: int, repeats: int,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The three arms, ``repeats`` times in alternating order; the summary (JSON-ready)."""
    from engine.datasets import importing

    scratch = Path(tempfile.mkdtemp(prefix="conv3d-import-bench-"))
    previous = {name: os.environ.get(name) for name in ("CONV3D_LAB_DATA", importing.IMPORT_WORKERS_ENV)}
    try:
        source = scratch / "series"
        dicom_bytes = write_series(source, series, slices, size)
        os.environ["CONV3D_LAB_DATA"] = str(scratch / "data")
        options = importing.ImportOptions(format="dicom", labels_csv="none")
        workers = importing.import_workers(series, series * slices * size * size)

        def engine_import(workers_env: str | None) -> Callable[[], Any]:
            def action():
                if workers_env is None:
                    os.environ.pop(importing.IMPORT_WORKERS_ENV, None)
                else:
                    os.environ[importing.IMPORT_WORKERS_ENV] = workers_env
                result = importing.import_dataset(source, "import_bench", options, replace=True)
                if result.samples != series:
                    raise RuntimeError(f"the import kept {result.samples} of {series} series")
            return action

        arms = [("pydicom", lambda: read_with_pydicom(source)), ("engine", engine_import(None)),
                ("engine 1 worker", engine_import("1"))]
        load_before = os.getloadavg()
        seconds: dict[str, list[float]] = {name: [] for name, _ in arms}
        for repeat in range(repeats):
            for name, action in (arms if repeat % 2 == 0 else arms[::-1]):
                if progress:
                    progress(f"repeat {repeat + 1}/{repeats}: {name}")
                seconds[name].append(_timed(action))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    files = series * slices
    summaries: dict[str, dict[str, Any]] = {}
    for name, values in seconds.items():
        median = statistics.median(values)
        summaries[name] = {"seconds": [round(value, 3) for value in values], "median_s": round(median, 3),
                           "files_per_s": round(files / median, 1), "mb_per_s": round(dicom_bytes / 2**20 / median, 2),
                           "workers": workers if name == "engine" else 1}
    for summary in summaries.values():
        summary["speed_vs_pydicom"] = round(summaries["pydicom"]["median_s"] / summary["median_s"], 3)
    return {
        "bench": "import", "version": IMPORT_BENCH_VERSION,
        "setup": {"series": series, "slices": slices, "size": size, "files": files, "repeats": repeats,
                  "dicom_mb": round(dicom_bytes / 2**20, 2)},
        "machine": {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "arms": summaries,
    }


def print_import(report: dict[str, Any]) -> None:
    setup, machine = report["setup"], report["machine"]
    print(f"{setup['series']} CT series x {setup['slices']} slices of {setup['size']}^2 ({setup['files']} files, "
          f"{setup['dicom_mb']} MB), {setup['repeats']} repeats, {machine['usable_cpus']} usable CPUs (load "
          f"{machine['load_average_before'][0]:.1f} -> {machine['load_average_after'][0]:.1f})")
    print(f"{'arm':<18} {'workers':>7} {'median s':>9} {'files/s':>9} {'MB/s':>7} {'vs pydicom':>10}")
    for name, arm in report["arms"].items():
        print(f"{name:<18} {arm['workers']:>7} {arm['median_s']:>9.2f} {arm['files_per_s']:>9.1f} "
              f"{arm['mb_per_s']:>7.1f} {arm['speed_vs_pydicom']:>10.2f}")


__all__ = ["DEFAULTS", "print_import", "read_with_pydicom", "run_import_bench", "write_series"]
