"""DICOM series through pydicom.

Files are found recursively (with or without the .dcm extension) and grouped
into samples: everything inside one top-level folder is one sample (a patient
or a study), a loose file stands for itself. Within a sample the files are
grouped by SeriesInstanceUID; a sample with several series needs a rule: the
largest, or a pattern matched case-insensitively against SeriesDescription and
the series' folder name (``FLAIR``), an exact match winning over a partial one.
Slices are ordered by ImagePositionPatient projected on the slice normal
(InstanceNumber when positions are missing), RescaleSlope / RescaleIntercept
are applied per slice, and multi-frame files are read frame by frame.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers.base import (
    SIDECAR_SUFFIXES, Candidate, Scan, Volume, has_suffix, is_dicom_file, relative, walk_files,
)
from engine.errors import DataError

LARGEST = "largest"
# A gap this many times the usual slice step means a slice is missing.
GAP_FACTOR = 1.5


@dataclass
class _Header:
    path: Path
    shown: str
    series_uid: str
    description: str
    folder: str
    patient: str | None
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    instance: int | None
    frames: int
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None
    modality: str | None = None


@dataclass
class _Series:
    uid: str
    headers: list[_Header] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(header.frames for header in self.headers)

    @property
    def label(self) -> str:
        first = self.headers[0]
        return first.description or first.folder or self.uid


def _floats(value, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def _decoder_problem(transfer_syntax) -> str | None:
    """Why pixel data in this transfer syntax cannot be decoded here, or None when it can."""
    if transfer_syntax is None or not transfer_syntax.is_compressed:
        return None
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return f"is compressed as {transfer_syntax.name}, which pydicom cannot decode"
    if decoder.is_available:
        return None
    missing = "; ".join(decoder.missing_dependencies) or "a pixel data handler"
    return f"is compressed as {transfer_syntax.name} and no installed handler decodes it (install one of: {missing})"


def _read_header(path: Path, shown: str, sample_root: Path) -> _Header | str:
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # defer_size: large values (the pixel data) stay on disk until asked for.
            dataset = pydicom.dcmread(path, defer_size=1024, force=path.suffix.lower() == ".dcm")
    except Exception as e:  # pydicom raises many types for a damaged file
        return f"is not a readable DICOM file ({type(e).__name__}: {e})"
    if not any(tag in dataset for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return "holds no image (a DICOM file without pixel data, e.g. a DICOMDIR or a report)"
    if "Rows" not in dataset or "Columns" not in dataset:
        return "has no Rows / Columns, so it is not an image"
    transfer_syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    problem = _decoder_problem(transfer_syntax)
    if problem:
        return problem
    position, orientation = _geometry(dataset, 0)
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        frames = 1
    instance = dataset.get("InstanceNumber")
    parent = path.parent
    return _Header(
        path=path, shown=shown, series_uid=str(dataset.get("SeriesInstanceUID") or f"no-uid:{parent}"),
        description=str(dataset.get("SeriesDescription") or ""),
        folder=relative(parent, sample_root) if parent != sample_root else "",
        patient=str(dataset.PatientID) if dataset.get("PatientID") else None,
        position=position, orientation=orientation,
        instance=int(instance) if isinstance(instance, (int, float)) or str(instance or "").isdigit() else None,
        frames=max(1, frames), rows=int(dataset.Rows), columns=int(dataset.Columns),
        pixel_spacing=_floats(dataset.get("PixelSpacing"), 2),
        modality=str(dataset.Modality).strip().upper() if dataset.get("Modality") else None,
    )


def _geometry(dataset, frame: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """ImagePositionPatient and ImageOrientationPatient of one frame (functional groups for multi-frame)."""
    position = _floats(dataset.get("ImagePositionPatient"), 3)
    orientation = _floats(dataset.get("ImageOrientationPatient"), 6)
    for sequence_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        sequence = dataset.get(sequence_name)
        if not sequence or len(sequence) <= index:
            continue
        group = sequence[index]
        if position is None and group.get("PlanePositionSequence"):
            position = _floats(group.PlanePositionSequence[0].get("ImagePositionPatient"), 3)
        if orientation is None and group.get("PlaneOrientationSequence"):
            orientation = _floats(group.PlaneOrientationSequence[0].get("ImageOrientationPatient"), 6)
    return position, orientation


def _rescale(dataset, frame: int) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept (top level, or from the frame's functional groups)."""
    slope, intercept = dataset.get("RescaleSlope"), dataset.get("RescaleIntercept")
    for sequence_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        sequence = dataset.get(sequence_name)
        if slope is None and sequence and len(sequence) > index and sequence[index].get("PixelValueTransformationSequence"):
            transform = sequence[index].PixelValueTransformationSequence[0]
            slope, intercept = transform.get("RescaleSlope"), transform.get("RescaleIntercept")
    return float(slope if slope is not None else 1.0), float(intercept if intercept is not None else 0.0)


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    return np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))


def scan(root: Path, options: Any, ignore: tuple[Path, ...] = ()) -> Scan:
    result = Scan(format="dicom", candidates=[], layout="series")
    rule = getattr(options, "series", None)
    files = [root] if root.is_file() else walk_files(root, result.skipped, ignore)
    samples: dict[str, list[_Header]] = defaultdict(list)
    loose: list[_Header] = []
    for path in files:
        shown = path.name if root.is_file() else relative(path, root)
        if has_suffix(path, SIDECAR_SUFFIXES):
            continue
        if not is_dicom_file(path):
            result.skipped[shown] = "is not a DICOM file (no 'DICM' marker and no .dcm extension)"
            continue
        top = Path(shown).parts[0] if len(Path(shown).parts) > 1 else None
        header = _read_header(path, shown, root / top if top else root)
        if isinstance(header, str):
            result.skipped[shown] = header
        elif top:
            samples[top].append(header)
        else:
            loose.append(header)
    # Loose files: each series in the folder is one sample, named by its first file.
    by_series: dict[str, list[_Header]] = defaultdict(list)
    for header in loose:
        by_series[header.series_uid].append(header)
    for headers in by_series.values():
        samples[Path(headers[0].shown).stem] = headers
    for sample_id in sorted(samples):
        _add_sample(result, sample_id, samples[sample_id], rule)
    return result


def _add_sample(result: Scan, sample_id: str, headers: list[_Header], rule: str | None) -> None:
    series: dict[str, _Series] = {}
    for header in headers:
        series.setdefault(header.series_uid, _Series(header.series_uid)).headers.append(header)
    chosen = _choose_series(list(series.values()), rule)
    if isinstance(chosen, str):
        result.skipped[sample_id] = chosen
        return
    problem, ordered = _order(chosen)
    if problem:
        result.skipped[sample_id] = problem
        return
    first = ordered[0]
    step = _step(ordered)
    spacing = (round(step, 4) if step else None, *(first.pixel_spacing or (None, None)))
    result.candidates.append(Candidate(
        path=sample_id if len(headers) > 1 or "/" in first.shown else first.shown,
        read=lambda: _read_volume(ordered, sample_id),
        ids=(sample_id,), group=first.patient, shape=(sum(h.frames for h in ordered), first.rows, first.columns),
        spacing=spacing if all(s is not None for s in spacing) else None,
        series=chosen.label if len(series) > 1 else None, modality=first.modality,
    ))


def _choose_series(found: list[_Series], rule: str | None) -> _Series | str:
    if len(found) == 1:
        return found[0]
    found.sort(key=lambda s: (-s.size, s.label))
    names = ", ".join(f"{s.label!r} ({s.size} slices)" for s in found)
    if rule is None:
        return (f"holds {len(found)} series ({names}); choose one with series='largest' or a SeriesDescription "
                "pattern (--series)")
    if rule.casefold() == LARGEST:
        return found[0]
    pattern = rule.casefold()

    def texts(s: _Series) -> list[str]:
        return [s.headers[0].description.casefold(), *(part.casefold() for part in Path(s.headers[0].folder).parts)]

    exact = [s for s in found if pattern in texts(s)]
    partial = [s for s in found if any(pattern in text for text in texts(s))]
    matches = exact or partial
    if len(matches) == 1:
        return matches[0]
    if not matches:
        return f"has no series matching {rule!r} (it holds {names})"
    return f"has {len(matches)} series matching {rule!r} ({', '.join(repr(s.label) for s in matches)}); use a longer pattern"


def _order(series: _Series) -> tuple[str | None, list[_Header]]:
    """The files of a series in anatomical order, or why they cannot be ordered."""
    headers = series.headers
    sizes = {(h.rows, h.columns) for h in headers}
    if len(sizes) > 1:
        return f"mixes slices of different sizes ({', '.join(f'{r}x{c}' for r, c in sorted(sizes))})", []
    if len(headers) > 1 and any(h.frames > 1 for h in headers):
        return "mixes multi-frame files with other files in one series; import one multi-frame file per sample", []
    if len(headers) == 1:
        return None, headers  # a multi-frame file's frames are ordered when read
    orientation = headers[0].orientation
    if orientation and all(h.position for h in headers):
        normal = _normal(orientation)
        ordered = sorted(headers, key=lambda h: (float(np.dot(normal, h.position)), h.shown))
        distances = [float(np.dot(normal, h.position)) for h in ordered]
        duplicates = [b.shown for a, b, da, db in zip(ordered, ordered[1:], distances, distances[1:]) if abs(db - da) < 1e-4]
        if duplicates:
            return f"has several slices at the same position ({', '.join(duplicates[:3])})", []
        steps = np.diff(distances)
        if len(steps) > 1 and steps.max() > GAP_FACTOR * np.median(steps):
            return (f"has a gap of {steps.max():.3g} mm between slices where {np.median(steps):.3g} mm is usual; "
                    "a slice is missing or was unreadable"), []
    elif all(h.instance is not None for h in headers):
        ordered = sorted(headers, key=lambda h: (h.instance, h.shown))
    else:
        ordered = sorted(headers, key=lambda h: h.shown)
    return None, ordered


def _step(headers: list[_Header]) -> float | None:
    if len(headers) < 2 or not headers[0].orientation or not all(h.position for h in headers):
        return None
    normal = _normal(headers[0].orientation)
    return abs(float(np.dot(normal, np.subtract(headers[1].position, headers[0].position))))


def _read_volume(ordered: list[_Header], sample_id: str) -> Volume:
    import pydicom

    slices, positions = [], []
    for header in ordered:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(header.path, force=header.path.suffix.lower() == ".dcm")
                pixels = dataset.pixel_array
        except Exception as e:
            raise DataError(f"its file {header.shown} cannot be decoded ({type(e).__name__}: {e})") from e
        if header.frames > 1:
            for index in range(header.frames):
                slope, intercept = _rescale(dataset, index)
                slices.append(np.asarray(pixels[index], dtype=np.float32) * slope + intercept)
                positions.append(_geometry(dataset, index))
        else:
            slope, intercept = _rescale(dataset, 0)
            slices.append(np.asarray(pixels, dtype=np.float32) * slope + intercept)
            positions.append((header.position, header.orientation))
    order = _frame_order(positions)
    voxels = np.stack([slices[i] for i in order])
    if voxels.ndim == 3:
        voxels = voxels[..., np.newaxis]
    return Volume(voxels, affine=_affine(ordered[0], [positions[i] for i in order]))


def _frame_order(positions) -> list[int]:
    """Frames of one multi-frame file sorted along the normal (already-ordered slices keep their order)."""
    orientation = positions[0][1]
    if not orientation or not all(p for p, _ in positions):
        return list(range(len(positions)))
    normal = _normal(orientation)
    return sorted(range(len(positions)), key=lambda i: (float(np.dot(normal, positions[i][0])), i))


def _affine(header: _Header, positions) -> np.ndarray | None:
    """Voxel (slice, row, column) -> RAS world coordinates; None when the geometry is incomplete."""
    first, orientation = positions[0]
    if first is None or orientation is None or header.pixel_spacing is None:
        return None
    row_cosine, column_cosine = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    row_spacing, column_spacing = header.pixel_spacing
    if len(positions) > 1 and positions[-1][0] is not None:
        slice_step = (np.asarray(positions[-1][0]) - np.asarray(first)) / (len(positions) - 1)
    else:
        slice_step = _normal(orientation)
    affine = np.eye(4)
    # Increasing row index moves along the column cosine; increasing column index along the row cosine.
    affine[:3, 0] = slice_step
    affine[:3, 1] = column_cosine * row_spacing
    affine[:3, 2] = row_cosine * column_spacing
    affine[:3, 3] = first
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    return lps_to_ras @ affine
