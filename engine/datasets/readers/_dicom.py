"""DICOM series through pydicom.

Files are found recursively (with or without the .dcm extension) and grouped
into samples: everything inside one top-level folder is one sample (a patient
or a study), a loose file stands for itself. Within a sample the files are
grouped by SeriesInstanceUID; a sample with several series needs a rule: the
largest *volume* (series that are not volumes are never chosen), or a pattern
matched case-insensitively against SeriesDescription and the series' folder
name (``FLAIR``), an exact match winning over a partial one.

What is checked before any pixel is read (a wrong volume is worse than a skipped one):
- geometry: one orientation (ImageOrientationPatient within ORIENTATION_TOLERANCE),
  no two slices at one position, an even step along the slice normal;
- at least MIN_SLICES slices: a single 2D image (an X-ray, one ultrasound frame) is not a volume;
- the declared size (Rows x Columns x frames x samples) against the import caps and the file's size;
- a decoder for the transfer syntax (the pip package to install is named when there is none);
- PALETTE COLOR images are refused: their pixel values index a colour table, they are not intensities.

Intensities (applied per frame, said in the scan's notes): the modality LUT or the
rescale slope / intercept (pydicom's ``apply_modality_lut``; enhanced multi-frame
files carry it in their functional groups), MONOCHROME1 inverted within the
stored range so that a higher value is brighter in every sample, like MONOCHROME2,
and DoseGridScaling for RT dose grids (values in Gy). Slices are ordered by
ImagePositionPatient projected on the slice normal (InstanceNumber when positions
are missing); RT dose frames are placed by GridFrameOffsetVector.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers.base import (
    MIN_SLICES, SIDECAR_SUFFIXES, Candidate, Scan, Volume, has_suffix, is_dicom_file, relative, size_problem,
    walk_files,
)
from engine.errors import DataError

LARGEST = "largest"
# A gap this many times the usual slice step means a slice is missing.
GAP_FACTOR = 1.5
# Direction cosines of two slices that differ by more than this are two orientations.
ORIENTATION_TOLERANCE = 1e-3
# Slice steps along the normal may differ by this fraction of the usual step (rounding in the headers).
SPACING_TOLERANCE = 0.05
# Two slices closer than this along the normal (mm) are at the same position.
SAME_POSITION_MM = 1e-3
# Decoders pydicom names by their import name; people install them under these pip names.
PIP_NAMES = {"gdcm": "python-gdcm", "pyjpegls": "pyjpegls", "pylibjpeg": "pylibjpeg"}
# Transfer syntaxes pylibjpeg-libjpeg cannot read in every file (12-bit JPEG Extended): GDCM can.
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
INSTALL_GDCM = "install GDCM with `pip install python-gdcm`"
# FrameIncrementPointer values of a cine loop: FrameTime (0018,1063), FrameTimeVector (0018,1065).
CINE_POINTERS = (0x00181063, 0x00181065)

Geometry = tuple  # (position (x, y, z) or None, orientation (6 cosines) or None) of one frame


@dataclass
class _Header:
    path: Path
    shown: str
    series_uid: str
    description: str
    folder: str
    patient: str | None
    frames_geometry: list[Geometry]  # one per frame
    instance: int | None
    frames: int
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None
    modality: str | None = None
    photometric: str = "MONOCHROME2"
    intensity: tuple[str, ...] = ()  # the transforms the reader will apply, for the notes

    @property
    def position(self):
        return self.frames_geometry[0][0]

    @property
    def orientation(self):
        return self.frames_geometry[0][1]


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
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _pip_names(requirements) -> str:
    names = []
    for requirement in requirements:
        module = requirement.split(">")[0].split("=")[0].strip()
        if module != "numpy":
            names.append(PIP_NAMES.get(module, module))
    return " or ".join(f"`pip install {name}`" for name in dict.fromkeys(names))


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
    # pydicom says e.g. "gdcm - requires gdcm>=3.0.10": the requirements are import names, not pip names.
    missing = [package for line in decoder.missing_dependencies
               for package in line.partition(" requires ")[2].split(" and ") if package]
    hint = _pip_names(missing) or "`pip install python-gdcm`"
    return f"is compressed as {transfer_syntax.name} and no installed decoder reads it ({hint})"


def _bits_problem(dataset, file_bytes: int | None = None) -> str | None:
    """Declared size against the caps and the file: a hostile header is refused before its pixels are read."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(dataset.get("NumberOfFrames") or 1)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        bits = int(dataset.get("BitsAllocated") or 16)
    except (TypeError, ValueError):
        return "has Rows / Columns / NumberOfFrames that are not numbers"
    if min(rows, columns, frames, samples) < 1:
        return f"declares {frames} frames of {rows}x{columns}, an empty image"
    problem = size_problem((frames, rows, columns, samples), 4)
    if problem:
        return problem
    transfer_syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    declared = frames * rows * columns * samples * bits // 8
    if file_bytes is not None and not (transfer_syntax is not None and transfer_syntax.is_compressed) \
            and "PixelData" in dataset and declared > file_bytes:
        return (f"declares {frames} frame(s) of {rows}x{columns} ({declared:,} bytes of pixel data) but the file "
                f"holds {file_bytes:,} bytes: truncated or a damaged header; it was not read")
    return None


def _intensity(dataset, photometric: str, samples: int) -> tuple[str, ...]:
    """The intensity transforms _read_volume applies to this file (names for the notes)."""
    if samples != 1:
        return ()
    applied = []
    if dataset.get("ModalityLUTSequence"):
        applied.append("modality LUT")
    else:
        slope, intercept = _rescale(dataset, 0)
        if (slope, intercept) != (1.0, 0.0):
            applied.append("rescale slope / intercept")
    if photometric == "MONOCHROME1":
        applied.append("MONOCHROME1 inverted")
    if dataset.get("DoseGridScaling") is not None:
        applied.append("DoseGridScaling")
    return tuple(applied)


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
    problem = _bits_problem(dataset, path.stat().st_size)
    if problem:
        return problem
    photometric = str(dataset.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    if photometric == "PALETTE COLOR":
        return ("is PALETTE COLOR: its pixel values index a colour table (e.g. ultrasound Doppler), they are not "
                "intensities, so it is not imported")
    transfer_syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    problem = _decoder_problem(transfer_syntax)
    if problem:
        return problem
    frames = max(1, int(dataset.get("NumberOfFrames") or 1))
    if frames > 1 and _is_cine(dataset):
        return (f"is a cine loop ({frames} frames in time, e.g. ultrasound or angiography), not a volume: its frames "
                "are not slices")
    instance = dataset.get("InstanceNumber")
    parent = path.parent
    modality = str(dataset.get("Modality") or "").strip() or None
    return _Header(
        path=path, shown=shown, series_uid=str(dataset.get("SeriesInstanceUID") or f"no-uid:{parent}"),
        description=str(dataset.get("SeriesDescription") or ""),
        folder=relative(parent, sample_root) if parent != sample_root else "",
        patient=str(dataset.PatientID) if dataset.get("PatientID") else None,
        frames_geometry=[_geometry(dataset, index) for index in range(frames)],
        instance=int(instance) if isinstance(instance, (int, float)) or str(instance or "").isdigit() else None,
        frames=frames, rows=int(dataset.Rows), columns=int(dataset.Columns),
        pixel_spacing=_floats(dataset.get("PixelSpacing"), 2) or _shared_pixel_spacing(dataset),
        modality=modality, photometric=photometric,
        intensity=_intensity(dataset, photometric, int(dataset.get("SamplesPerPixel") or 1)),
    )


def _is_cine(dataset) -> bool:
    """Frames that follow each other in time (FrameIncrementPointer at FrameTime / FrameTimeVector)."""
    pointer = dataset.get("FrameIncrementPointer")
    if pointer is None:
        return False
    pointers = pointer if isinstance(pointer, (list, tuple)) or hasattr(pointer, "__iter__") else [pointer]
    try:
        return any(int(tag) in CINE_POINTERS for tag in pointers)
    except (TypeError, ValueError):
        return False


def _shared_pixel_spacing(dataset) -> tuple[float, float] | None:
    for sequence_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        sequence = dataset.get(sequence_name)
        if sequence and sequence[0].get("PixelMeasuresSequence"):
            return _floats(sequence[0].PixelMeasuresSequence[0].get("PixelSpacing"), 2)
    return None


def _geometry(dataset, frame: int) -> Geometry:
    """ImagePositionPatient and ImageOrientationPatient of one frame (functional groups for multi-frame,
    GridFrameOffsetVector for RT dose grids)."""
    position = _floats(dataset.get("ImagePositionPatient"), 3)
    orientation = _floats(dataset.get("ImageOrientationPatient"), 6)
    if frame > 0:
        position = None  # the top-level position is the first frame's; the others come from the groups or offsets
    for sequence_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        sequence = dataset.get(sequence_name)
        if not sequence or len(sequence) <= index:
            continue
        group = sequence[index]
        if group.get("PlanePositionSequence") and (frame > 0 or position is None):
            position = _floats(group.PlanePositionSequence[0].get("ImagePositionPatient"), 3) or position
        if orientation is None and group.get("PlaneOrientationSequence"):
            orientation = _floats(group.PlaneOrientationSequence[0].get("ImageOrientationPatient"), 6)
    frames = int(dataset.get("NumberOfFrames") or 1)
    offsets = dataset.get("GridFrameOffsetVector")
    if frames > 1 and offsets is not None and position is not None and orientation is not None:
        try:
            offset = float(list(offsets)[frame])
        except (IndexError, TypeError, ValueError):
            return position, orientation
        # Offsets are along the normal, relative to the first frame's position (the usual relative form).
        first = np.asarray(_floats(dataset.get("ImagePositionPatient"), 3) or position)
        position = tuple(float(v) for v in first + offset * _normal(orientation))
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
        chosen = _add_sample(result, sample_id, samples[sample_id], rule)
        if chosen is not None:
            result.applied.update(set(t for header in chosen for t in header.intensity))
    return result


def _add_sample(result: Scan, sample_id: str, headers: list[_Header], rule: str | None) -> list[_Header] | None:
    series: dict[str, _Series] = {}
    for header in headers:
        series.setdefault(header.series_uid, _Series(header.series_uid)).headers.append(header)
    checked = {uid: _order(found) for uid, found in series.items()}
    chosen = _choose_series(list(series.values()), rule, {uid: problem for uid, (problem, _) in checked.items()})
    if isinstance(chosen, str):
        result.skipped[sample_id] = chosen
        return None
    problem, ordered = checked[chosen.uid]
    if problem:
        result.skipped[sample_id] = problem
        return None
    first = ordered[0]
    step = _step(ordered)
    spacing = (round(step, 4) if step else None, *(first.pixel_spacing or (None, None)))
    result.candidates.append(Candidate(
        path=sample_id if len(headers) > 1 or "/" in first.shown else first.shown,
        # A partial, not a lambda: it pickles, so an import can read series in a process pool.
        read=functools.partial(_read_volume, ordered, sample_id),
        ids=(sample_id,), group=first.patient, shape=(sum(h.frames for h in ordered), first.rows, first.columns),
        spacing=spacing if all(s is not None for s in spacing) else None,
        series=chosen.label if len(series) > 1 else None, modality=first.modality,
        orientation=_axis_codes(ordered),
    ))
    return ordered


def _axis_codes(ordered: list[_Header]) -> str | None:
    """The world directions of the (slice, row, column) axes, as nibabel names them (e.g. 'SPL' for axial LPS)."""
    affine = _affine(ordered[0], [g for h in ordered for g in h.frames_geometry])
    if affine is None:
        return None
    import nibabel

    return "".join(nibabel.aff2axcodes(affine))


def _choose_series(found: list[_Series], rule: str | None, problems: dict[str, str | None]) -> _Series | str:
    if len(found) == 1:
        return found[0]
    found.sort(key=lambda s: (-s.size, s.label))
    names = ", ".join(f"{s.label!r} ({s.size} slices{'' if problems[s.uid] is None else ', not a volume'})"
                      for s in found)
    if rule is None:
        return (f"holds {len(found)} series ({names}); choose one with series='largest' or a SeriesDescription "
                "pattern (--series)")
    if rule.casefold() == LARGEST:
        volumes = [s for s in found if problems[s.uid] is None]
        if volumes:
            return volumes[0]
        reasons = "; ".join(f"{s.label!r} {problems[s.uid]}" for s in found[:3])
        return f"holds {len(found)} series and none is a volume ({reasons})"
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


def _too_few(headers: list[_Header]) -> str | None:
    slices = sum(h.frames for h in headers)
    if slices >= MIN_SLICES:
        return None
    first = headers[0]
    if slices == 1:
        return (f"is a single 2D image ({first.rows}x{first.columns}), not a volume; a volume needs at least "
                f"{MIN_SLICES} slices")
    return f"has only {slices} slices of {first.rows}x{first.columns}; a volume needs at least {MIN_SLICES}"


def _order(series: _Series) -> tuple[str | None, list[_Header]]:
    """The files of a series in anatomical order, or why they are not one volume."""
    headers = series.headers
    sizes = {(h.rows, h.columns) for h in headers}
    if len(sizes) > 1:
        return f"mixes slices of different sizes ({', '.join(f'{r}x{c}' for r, c in sorted(sizes))})", []
    if len(headers) > 1 and any(h.frames > 1 for h in headers):
        return "mixes multi-frame files with other files in one series; import one multi-frame file per sample", []
    problem = _geometry_problem([g for h in headers for g in h.frames_geometry])
    if problem:
        return problem, []
    problem = _too_few(headers)
    if problem:
        return problem, []
    if len(headers) == 1:
        return None, headers  # a multi-frame file's frames are ordered when read
    orientation = headers[0].orientation
    if orientation and all(h.position for h in headers):
        normal = _normal(orientation)
        ordered = sorted(headers, key=lambda h: (float(np.dot(normal, h.position)), h.shown))
    elif all(h.instance is not None for h in headers):
        ordered = sorted(headers, key=lambda h: (h.instance, h.shown))
    else:
        ordered = sorted(headers, key=lambda h: h.shown)
    return None, ordered


def _geometry_problem(frames: list[Geometry]) -> str | None:
    """Why these images are not the slices of one volume: several orientations, repeated positions, uneven steps."""
    count = len(frames)
    orientations = [o for _, o in frames]
    if any(o is not None for o in orientations) and any(o is None for o in orientations):
        return f"mixes images with and without ImageOrientationPatient ({count} images)"
    known = [np.asarray(o) for o in orientations if o is not None]
    distinct: list[np.ndarray] = []
    for orientation in known:
        if not any(np.max(np.abs(orientation - seen)) <= ORIENTATION_TOLERANCE for seen in distinct):
            distinct.append(orientation)
    if len(distinct) > 1:
        return (f"is {count} images in {len(distinct)} different orientations: a localizer or projection set, "
                "not a volume")
    if count < 2 or not known or not all(p is not None for p, _ in frames):
        return None
    normal = _normal(tuple(known[0]))
    distances = np.sort([float(np.dot(normal, p)) for p, _ in frames])
    steps = np.diff(distances)
    repeated = int(np.count_nonzero(steps < SAME_POSITION_MM))
    if repeated:
        positions = count - repeated
        return (f"has {repeated} image{'s' if repeated > 1 else ''} at the same position as another ({count} images, "
                f"{positions} position{'s' if positions > 1 else ''}): a repeated acquisition, a time series or "
                "several series under one UID, not one volume")
    usual = float(np.median(steps))
    if len(steps) > 1 and steps.max() > GAP_FACTOR * usual:
        return (f"has a gap of {steps.max():.3g} mm between slices where {usual:.3g} mm is usual; "
                "a slice is missing or was unreadable")
    if len(steps) > 1 and (steps.max() - steps.min()) > SPACING_TOLERANCE * usual:
        return (f"has uneven slice spacing ({steps.min():.3g} to {steps.max():.3g} mm along the slice normal); "
                "resampling it as evenly spaced would distort it")
    return None


def _step(headers: list[_Header]) -> float | None:
    frames = [g for h in headers for g in h.frames_geometry]
    if len(frames) < 2 or not frames[0][1] or not all(p for p, _ in frames):
        return None
    normal = _normal(frames[0][1])
    distances = sorted(float(np.dot(normal, p)) for p, _ in frames)
    return abs(distances[1] - distances[0])


def _stored_range(dataset) -> tuple[int, int]:
    bits = int(dataset.get("BitsStored") or dataset.get("BitsAllocated") or 16)
    if int(dataset.get("PixelRepresentation") or 0) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _to_intensities(pixels: np.ndarray, dataset, frame: int, photometric: str) -> np.ndarray:
    """Stored values of one frame -> intensities: modality LUT or rescale, MONOCHROME1, DoseGridScaling."""
    from pydicom.pixels import apply_modality_lut

    if pixels.ndim == 3:  # colour (RGB / YBR decoded to RGB): no grey-level transform applies
        return np.asarray(pixels, dtype=np.float32)

    def modality(values: np.ndarray) -> np.ndarray:
        if dataset.get("ModalityLUTSequence"):
            return np.asarray(apply_modality_lut(values, dataset), dtype=np.float64)
        slope, intercept = _rescale(dataset, frame)
        return np.asarray(values, dtype=np.float64) * slope + intercept

    values = modality(pixels)
    if photometric == "MONOCHROME1":
        # Inverted within the range the stored values can take (not this image's min / max), so a MONOCHROME1
        # and a MONOCHROME2 sample of one scene agree voxel for voxel.
        low, high = modality(np.asarray(_stored_range(dataset), dtype=pixels.dtype if pixels.dtype.kind in "iu" else np.int64))
        values = (low + high) - values
    scaling = dataset.get("DoseGridScaling")
    if scaling is not None:
        values = values * float(scaling)
    return values.astype(np.float32)


def _decode_problem(header: _Header, dataset, error: Exception) -> str:
    transfer_syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    hint = ""
    if transfer_syntax is not None and str(transfer_syntax) == JPEG_EXTENDED:
        hint = f"; 12-bit JPEG (JPEG Extended) is read reliably by GDCM: {INSTALL_GDCM}"
    elif transfer_syntax is not None and transfer_syntax.is_compressed:
        hint = f"; another decoder may read {transfer_syntax.name}: {INSTALL_GDCM}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"its file {header.shown} cannot be decoded ({type(error).__name__}: {first_line}){hint}"


def _read_volume(ordered: list[_Header], sample_id: str) -> Volume:
    import pydicom

    slices, positions = [], []
    for header in ordered:
        dataset = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(header.path, force=header.path.suffix.lower() == ".dcm")
                pixels = dataset.pixel_array
        except Exception as e:
            raise DataError(_decode_problem(header, dataset, e)) from e
        if header.frames > 1:
            for index in range(header.frames):
                slices.append(_to_intensities(pixels[index], dataset, index, header.photometric))
                positions.append(header.frames_geometry[index])
        else:
            slices.append(_to_intensities(pixels, dataset, 0, header.photometric))
            positions.append(header.frames_geometry[0])
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
    if len(positions) > 1 and all(p for p, _ in positions):
        positions = [positions[i] for i in _frame_order(positions)]
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
