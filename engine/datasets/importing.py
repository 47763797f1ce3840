"""Bring your own scans: preview and import a folder, file or zip into ``<data>/imports/<name>/``.

One public entry point per step, for the CLI and the Data page alike:
``preview_import`` says what an import would do without writing anything;
``import_dataset`` reads, checks and preprocesses one sample at a time (progress
callback, cancel callable checked between samples), writes into a hidden staging
folder and renames it into place at the end, so a failed or cancelled import
leaves nothing behind. Bad files are skipped and reported with the reason; the
import fails, with one sentence, only when nothing usable remains.

What is decided here, never left to chance (a wrong dataset is worse than a refusal):
- the class layout, at gathering time: class folders, a labels CSV or the labels in
  the file, recorded in ``ImportPreview.layout`` and a note. Folders that each hold a
  single scan, or the scans of a single patient, are patient or series folders, not
  classes: refused with a sentence that says how to give labels;
- orientation: volumes are reoriented to RAS by default (``reorient``); with
  reorient off, scans of several orientations are refused;
- NaN voxels (a NIfTI background) become 0 by default (``nan_to_zero``), with a note.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine import actors, paths
from engine.config import DataConfig
from engine import positive_class as positive
from engine.datasets import imported, labels as labels_module, preprocess, readers
from engine.datasets.builtins import DATASETS
from engine.datasets.splits import SPLIT_NAMES, UNASSIGNED, make_splits
from engine.datasets.splits import class_counts as count_per_class
from engine.errors import ConfigError, DataError
from engine.store import artefacts

# Bump when the import pipeline changes what it writes for the same source and options.
IMPORT_VERSION = 2
# Target edges a resampled volume may have.
MIN_EDGE, MAX_EDGE = 4, 512
# Bytes copied from the staging file into x.npy per step (bounded memory on large imports).
COPY_CHUNK_BYTES = 16 * 1024 * 1024
# A refusal that lists skipped files shows this many reasons, and this many files per reason.
LISTED_REASONS, LISTED_PER_REASON = 4, 3
# Formats whose files carry an orientation (an affine) that reorient can use.
ORIENTED_FORMATS = ("dicom", "nifti")
# Samples read (at most) to choose the intensity handling when the headers do not tell the modality.
INTENSITY_SAMPLE_READS = 3
# A class needs this many samples for stratified train, validation and test splits (one in each).
MIN_SAMPLES_PER_CLASS = 3
# What the class-layout problems suggest.
LAYOUT_ADVICE = ("give a labels CSV (one row per scan: its id and its class), or put the scans of each class "
                 "in a folder named after the class")


class ImportCancelled(DataError):
    """The cancel callable asked to stop; nothing was written."""


@dataclass
class ImportOptions:
    """How to read and preprocess a source; saved whole in the dataset's manifest and fingerprint."""

    format: str = "auto"  # auto, dicom, nifti, hdf5 or npz
    # CSV of id, label [, group] [, split]. None: the one *.csv at the top of the source when there is
    # one, else class folders (or the labels in an HDF5 / NPZ file); "none": class folders regardless.
    labels_csv: str | None = None
    id_column: str | None = None  # CSV column names; None: guessed from their names and values
    label_column: str | None = None
    group_column: str | None = None  # patient / group: samples of one group never straddle splits
    split_column: str | None = None  # train / val / test per row, kept as given
    shape: tuple[int, int, int] | None = None  # resample every volume to (D, H, W); None: keep (all must agree)
    reorient: bool = True  # reorder and flip axes to RAS+ (NIfTI and DICOM carry the orientation); off: mixed ones refused
    nan_to_zero: bool = True  # NaN voxels (e.g. a NIfTI's background) become 0, with a note; off: such samples are skipped
    # Intensities. With window, clip_percentiles and normalization all None the import chooses from the
    # data (preprocess.choose_intensity: CT window for CT, z-score for MR ...); any of them set: as given.
    window: str | None = None  # CT window preset in Hounsfield units (preprocess.CT_WINDOWS), scaled to [0, 1]
    clip_percentiles: tuple[float, float] | None = None  # clip each volume to these percentiles, e.g. (0.5, 99.5)
    normalization: str | None = None  # none, minmax or zscore, per volume, after resampling; None: auto
    channels: str = "keep"  # keep, first or mean (e.g. RGB DICOM to one channel)
    volume_index: int | None = None  # which volume of a 4D NIfTI image
    series: str | None = None  # DICOM folders with several series: "largest" or a SeriesDescription pattern
    x_key: str | None = None  # HDF5 / NPZ: the array of volumes, when the layout is not recognised
    y_key: str | None = None  # HDF5 / NPZ: the array of labels

    def validate(self) -> "ImportOptions":
        problems = []
        if self.format not in readers.FORMATS:
            problems.append(f"format is {self.format!r}; use one of {', '.join(readers.FORMATS)}.")
        if self.shape is not None:
            shape = tuple(self.shape)
            if len(shape) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and MIN_EDGE <= n <= MAX_EDGE
                                          for n in shape):
                problems.append(f"shape is {self.shape!r}; give three whole numbers D H W between {MIN_EDGE} and {MAX_EDGE}.")
            else:
                self.shape = shape
        if self.window is not None and self.window not in preprocess.CT_WINDOWS:
            problems.append(f"window is {self.window!r}; use one of {', '.join(preprocess.CT_WINDOWS)}.")
        if self.window is not None and self.clip_percentiles is not None:
            problems.append("window and clip_percentiles both clip intensities; choose one.")
        if self.clip_percentiles is not None:
            try:
                low, high = (float(v) for v in self.clip_percentiles)
                valid = 0 <= low < high <= 100
            except (TypeError, ValueError):
                valid = False
            if not valid:
                problems.append(f"clip_percentiles is {self.clip_percentiles!r}; give two percentiles 0 <= low < high <= 100.")
        if self.normalization is not None and self.normalization not in preprocess.NORMALIZATIONS:
            problems.append(f"normalization is {self.normalization!r}; use one of {', '.join(preprocess.NORMALIZATIONS)}.")
        if self.channels not in preprocess.CHANNEL_MODES:
            problems.append(f"channels is {self.channels!r}; use one of {', '.join(preprocess.CHANNEL_MODES)}.")
        if self.volume_index is not None and (isinstance(self.volume_index, bool) or not isinstance(self.volume_index, int)
                                              or self.volume_index < 0):
            problems.append(f"volume_index is {self.volume_index!r}; give a whole number from 0.")
        for name in ("series", "x_key", "y_key", "id_column", "label_column", "group_column", "split_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200
                                      or any(ord(c) < 32 for c in value)):
                problems.append(f"{name} must be a short line of text.")
        if problems:
            raise ConfigError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["shape"] = list(self.shape) if self.shape else None
        raw["clip_percentiles"] = list(self.clip_percentiles) if self.clip_percentiles else None
        return raw

    @property
    def intensity_chosen(self) -> bool:
        """Whether the intensity handling was given (else the import chooses it from the data)."""
        return self.window is not None or self.clip_percentiles is not None or self.normalization is not None


@dataclass(frozen=True)
class ImportProgress:
    done: int  # samples handled so far (imported or skipped)
    total: int
    path: str  # the sample just handled
    skipped: int  # samples skipped so far


@dataclass
class ImportPreview:
    format: str
    layout: str
    source: str
    samples: int  # usable candidates (voxel checks happen during the import)
    classes: dict[str, int]
    shapes: dict[str, int]  # "DxHxW" -> count, as the headers tell
    spacings: dict[str, int]  # "dz x dy x dx mm" -> count
    splits: dict[str, int]  # predefined split sizes (empty when none)
    groups: int  # distinct groups (0: every sample stands alone)
    skipped: dict[str, str]  # path -> why
    unmatched_rows: list[str]  # CSV ids without a file
    series: dict[str, int]  # DICOM: the series chosen per sample, by description
    notes: list[str]
    labels_csv: str | None = None  # the labels CSV used (its file name), None without one
    columns: dict[str, str | None] = field(default_factory=dict)  # role (id, label, group, split) -> CSV column
    csv_columns: list[str] = field(default_factory=list)  # every column of the labels CSV
    modality: str | None = None  # DICOM Modality of most samples, when the headers tell
    window: str | None = None  # the intensity handling the import will apply ...
    normalization: str = "none"
    intensity: str = ""  # ... and why, in one sentence
    # Why the class layout cannot be trained, each with what to do (import_dataset refuses them; a class too
    # small for the splits only with check_splits, as the CLI and the Data page ask).
    problems: list[str] = field(default_factory=list)
    # Two classes: the positive class guessed from their names (import_dataset's positive_class changes it).
    positive_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportResult:
    name: str
    path: str
    samples: int
    classes: dict[str, int]
    splits: dict[str, int]
    groups: int
    volume_shape: list[int]
    skipped: dict[str, str]
    unmatched_rows: list[str]
    fingerprint: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    positive_class: str | None = None  # two classes: the one sensitivity and the threshold are about

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Sample:
    candidate: readers.Candidate
    label: str
    group: str | None
    split: str | None


@dataclass
class _Gathered:
    format: str
    layout: str
    samples: list[_Sample]
    skipped: dict[str, str]
    unmatched_rows: list[str]
    notes: list[str]
    scans: list[readers.Scan]
    class_of: dict[str, str] = field(default_factory=dict)  # skipped path -> the class it would have had
    labels_csv: Path | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    csv_columns: list[str] = field(default_factory=list)

    def close(self) -> None:
        for scan in self.scans:
            scan.close()


# ------------------------------------------------------------------ gathering
def _gather(source: Path, options: ImportOptions) -> _Gathered:
    """Every candidate sample with its label, group and predefined split; nothing is read but headers."""
    if not source.exists():
        raise DataError(f"{source} does not exist; check the path.")
    fmt = options.format if options.format != "auto" else readers.detect_format(source)
    if fmt in readers.ARRAY_FORMATS:
        if options.labels_csv and options.labels_csv.strip().casefold() != labels_module.NO_LABELS_CSV:
            raise DataError(f"An {fmt.upper()} file carries its own labels; leave out the labels CSV.")
        scan = readers.scan_arrays(source, fmt, options)
        samples = [_Sample(c, c.label, c.group, c.split) for c in scan.candidates]
        notes = [f"Class layout: the labels stored in {source.name} ({scan.layout} layout).", *scan.notes]
        return _Gathered(fmt, scan.layout, samples, dict(scan.skipped), [], notes, [scan])
    given = source
    source = _unwrap(source)
    if source.is_file():
        raise DataError(
            f"{source.name} is a single scan; give a folder with one folder per class, or a folder and a labels CSV."
        )
    csv_path = _labels_csv(source, options.labels_csv)
    if csv_path is not None:
        try:
            gathered = _gather_csv(source, fmt, options, csv_path)
        except DataError as e:
            if options.labels_csv is not None or type(e) is not DataError:
                raise
            sentence = str(e).rstrip(".")
            raise DataError(f"{sentence}. ({csv_path.name} lies at the top of the source, so it was read as the "
                            "labels file; set the labels CSV to 'none' (--labels none) to read class folders.)") from e
    else:
        gathered = _gather_class_folders(source, fmt, options, unwrapped=source != given)
    try:
        applied = Counter()
        for scan in gathered.scans:
            applied.update(scan.applied)
        gathered.notes += readers.intensity_notes(applied)
        gathered.notes += _orientation_notes(gathered, options)
    except BaseException:
        gathered.close()
        raise
    return gathered


def _orientation_notes(gathered: _Gathered, options: ImportOptions) -> list[str]:
    """What happens to the scans' orientations; DataError when reorient is off and they differ."""
    if gathered.format not in ORIENTED_FORMATS:
        return []
    found = Counter(s.candidate.orientation for s in gathered.samples if s.candidate.orientation)
    unknown = sum(1 for s in gathered.samples if not s.candidate.orientation)
    listed = ", ".join(f"{codes} {count}" for codes, count in found.most_common())
    if options.reorient:
        moved = sum(count for codes, count in found.items() if codes != "RAS")
        said = (f"Orientation: every volume is reordered and flipped to RAS (reorient); {moved} of {sum(found.values())} "
                f"were in another orientation ({listed})." if moved else
                f"Orientation: every volume is already RAS ({sum(found.values())}); reorient changed nothing.")
        if unknown:
            said += f" {unknown} carry no orientation and are kept as stored."
        return [said] if found else []
    if len(found) > 1:
        raise DataError(
            f"The scans come in {len(found)} orientations ({listed}); with reorient off their axes would not line up "
            "between samples: leave reorient on (the default; --reorient) to bring every volume to RAS."
        )
    return [f"Orientation: kept as stored ({listed or 'unknown'}; reorient is off)."] if found or unknown else []


def _labels_csv(root: Path, given: str | None) -> Path | None:
    """The labels CSV: the one given (a path, or a name inside the source), else the one at the source's top."""
    if given is None:
        return labels_module.find_labels_csv(root)
    if given.strip().casefold() == labels_module.NO_LABELS_CSV:
        return None
    for path in (Path(os.path.expanduser(given)), root / given):
        if path.is_file():
            return path
    wanted = Path(given).name.casefold()
    found = [path for path in readers.walk_files(root, {}) if path.name.casefold() == wanted]
    if len(found) == 1:
        return found[0]
    raise DataError(f"The labels CSV {given!r} was not found, neither as a path nor inside the source; check its name.")


def _unwrap(folder: Path) -> Path:
    """A folder holding nothing but one folder (a zipped folder, say) is read as that folder."""
    while folder.is_dir():
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir():
            break
        folder = entries[0]
    return folder


def _gather_class_folders(root: Path, fmt: str, options: ImportOptions, unwrapped: bool = False) -> _Gathered:
    gathered = _Gathered(fmt, "class-folders", [], {}, [], [], [])
    loose = [path for path in sorted(root.iterdir()) if path.is_file() and not path.name.startswith(".")
             and not readers.has_suffix(path, readers.SIDECAR_SUFFIXES)]
    for path in loose:
        gathered.skipped[path.name] = "is not in a class folder (put each scan in a folder named after its class)"
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"]
    if not folders and unwrapped and loose:
        raise DataError(
            f"{root.name} is the only folder, so every scan would have one class ({root.name!r}); a classifier needs "
            f"two: put each class's scans in a folder of its own next to {root.name}, or give a labels CSV (--labels)."
        )
    if len(folders) == 1:
        raise DataError(
            f"{root.name} holds one class folder ({folders[0].name!r}); a classifier needs at least two: add a "
            "folder per class next to it, or give a labels CSV (--labels)."
        )
    try:
        for class_folder in labels_module.class_folders(root):
            scan = readers.scan_files(class_folder, fmt, options)
            gathered.scans.append(scan)
            prefix = class_folder.name + "/"
            for path, reason in scan.skipped.items():
                gathered.skipped[prefix + path] = reason
                gathered.class_of[prefix + path] = class_folder.name
            gathered.notes += scan.notes
            for candidate in scan.candidates:
                candidate.path = prefix + candidate.path
                gathered.samples.append(_Sample(candidate, class_folder.name, candidate.group, None))
        labels_module.check_class_layout(root.name, {
            folder.name: [s.candidate.group for s in gathered.samples if s.label == folder.name] for folder in folders
        }, unwrapped, folder_samples=fmt == "dicom" or any(s.candidate.path.count("/") > 1 for s in gathered.samples))
    except BaseException:
        gathered.close()
        raise
    counts = Counter(s.label for s in gathered.samples)
    gathered.notes.insert(0, (
        f"Class layout: one folder per class under {root.name} ({len(folders)} classes: "
        + ", ".join(f"{folder.name} {counts.get(folder.name, 0)}" for folder in folders[:12])
        + (", ..." if len(folders) > 12 else "") + ")."
    ))
    return gathered


def _gather_csv(root: Path, fmt: str, options: ImportOptions, csv_path: Path) -> _Gathered:
    scan = readers.scan_files(root, fmt, options, ignore=(csv_path.resolve(),))
    try:
        table = labels_module.read_csv(csv_path, options.id_column, options.label_column, options.group_column,
                                       options.split_column, sample_ids=[i for c in scan.candidates for i in c.ids])
    except BaseException:
        scan.close()
        raise
    gathered = _Gathered(fmt, "labels-csv", [], dict(scan.skipped), [], [
        f"Class layout: the {table.columns['label']!r} column of {csv_path.name} (ids in {table.columns['id']!r}).",
        *scan.notes], [scan], labels_csv=csv_path, columns=dict(table.columns), csv_columns=list(table.header))
    used: dict[str, str] = {}
    for candidate in scan.candidates:
        found = table.match(candidate.ids)
        if found is None:
            gathered.skipped[candidate.path] = (
                f"has no row in {csv_path.name} (its id {candidate.ids[0] if candidate.ids else candidate.path!r} "
                "matches none)"
            )
            continue
        key, row = found
        if key in used:
            gathered.skipped[candidate.path] = f"matches the same row of {csv_path.name} ({row.id!r}) as {used[key]}"
            continue
        used[key] = candidate.path
        gathered.samples.append(_Sample(candidate, row.label, row.group or candidate.group, row.split))
    gathered.unmatched_rows = [row.id for key, row in table.rows.items() if key not in used]
    return gathered


def _source_path(source: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(source)))


class _Unzipped:
    """A zip source extracted safely for the duration of a preview or import; other sources pass through."""

    def __init__(self, source: Path):
        self.source, self.folder = source, None

    def __enter__(self) -> Path:
        if self.source.is_file() and self.source.suffix.lower() == ".zip":
            from engine.datasets import uploads

            self.folder = uploads.extract_zip(self.source)
            return self.folder
        return self.source

    def __exit__(self, *exc) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


# ------------------------------------------------------------------ checks before reading voxels
def _modality(candidates: list[readers.Candidate]) -> str | None:
    counter = Counter(candidate.modality for candidate in candidates if candidate.modality)
    return counter.most_common(1)[0][0] if counter else None


def _sample_range(candidates: list[readers.Candidate]) -> tuple[float | None, float | None]:
    """The finite value range of the first readable sample (None, None when none of the first few reads)."""
    for candidate in candidates[:INTENSITY_SAMPLE_READS]:
        try:
            voxels = np.asarray(candidate.read().voxels, dtype=np.float32)
        except Exception:  # noqa: BLE001 - a bad file is skipped (and reported) by the import itself
            continue
        finite = voxels[np.isfinite(voxels)]
        if finite.size:
            return float(finite.min()), float(finite.max())
    return None, None


def _resolve_intensity(options: ImportOptions, candidates: list[readers.Candidate]) -> tuple[ImportOptions, str]:
    """The options with the intensity handling decided (given, or chosen from the data), and why."""
    if options.intensity_chosen:
        resolved = replace(options, normalization=options.normalization or "none")
        return resolved, preprocess.describe_intensity(resolved.window, resolved.clip_percentiles,
                                                       resolved.normalization)
    modality = _modality(candidates)
    low, high = (None, None) if modality in ("CT", "MR") else _sample_range(candidates)
    window, normalization, why = preprocess.choose_intensity(modality, low, high)
    return replace(options, window=window, normalization=normalization), why


def layout_problems(labels: list[str], groups: list[str | None],
                    splits: list[str | None]) -> tuple[list[str], bool, list[str]]:
    """Why samples with these labels (groups, predefined splits) cannot be trained, each sentence with the fix;
    whether the layout is nonsense whatever the data (one class, or a class per sample); and notes.

    Besides those two, a problem: a class with fewer samples than the three
    stratified splits need (no predefined split). A note: the splits at the
    default fractions fail (what ``make_splits`` would refuse when the first run
    starts; other fractions on the Train page may work).
    """
    if not labels:
        return [], False, []
    counts = Counter(labels)
    if len(counts) == 1:
        return [f"This class layout cannot be trained: all {len(labels)} samples have the class {labels[0]!r}, "
                f"and a classifier needs two or more; {LAYOUT_ADVICE}."], True, []
    if len(labels) >= 3 and len(counts) == len(labels):
        return [f"This class layout cannot be trained: every sample is a class of its own ({len(labels)} classes of "
                "one sample each; the folders look like patients, not classes); " + LAYOUT_ADVICE + "."], True, []
    name, count = min(counts.items(), key=lambda item: (item[1], item[0]))
    if count < MIN_SAMPLES_PER_CLASS and not any(splits):
        return [f"This class layout cannot be trained: the class {name!r} has {count} sample(s), and the train, "
                f"validation and test splits need at least {MIN_SAMPLES_PER_CLASS} of every class; add samples of "
                f"the small classes, merge classes, or {LAYOUT_ADVICE}."], False, []
    class_names = labels_module.sort_classes(set(counts))
    y = np.asarray([class_names.index(label) for label in labels])
    distinct = {g for g in groups if g is not None}
    group_codes = None
    if len(distinct) > 1 or (distinct and None in groups):
        codes: dict[str, int] = {}
        group_codes = np.asarray([codes.setdefault(g if g is not None else f"\0{i}", len(codes))
                                  for i, g in enumerate(groups)])
    predefined = np.asarray([SPLIT_NAMES.index(s) if s else UNASSIGNED for s in splits], dtype=np.int8)
    defaults = DataConfig()
    try:
        make_splits(y, defaults.val_fraction, defaults.test_fraction, groups=group_codes, class_names=class_names,
                    predefined=predefined)
    except (DataError, ValueError) as e:
        return [], False, [f"At the default fractions (validation {defaults.val_fraction:g}, test "
                           f"{defaults.test_fraction:g}) the first run would stop: {e}"]
    return [], False, []


def _problems(gathered: _Gathered) -> tuple[list[str], bool, list[str]]:
    """The class-layout problems of what was gathered; the first names the classes that skips emptied, and why."""
    problems, nonsense, notes = layout_problems([s.label for s in gathered.samples], [s.group for s in gathered.samples],
                                                [s.split for s in gathered.samples])
    emptied = _emptied_classes(gathered, gathered.samples, gathered.skipped)
    if problems and emptied:
        why = "".join(f" Class {label!r} lost every sample: {skip_summary(lost)}." for label, lost in emptied.items())
        problems = [problems[0] + why, *problems[1:]]
    return problems, nonsense, notes


def _counts(values) -> dict[str, int]:
    counter = Counter(values)
    return {name: counter[name] for name in labels_module.sort_classes(set(counter))} if counter else {}


def preview_import(source: str | os.PathLike, options: ImportOptions | None = None) -> ImportPreview:
    """What importing ``source`` (a folder, an HDF5 / NPZ / DICOM file or a zip) would do; writes nothing."""
    options = (options or ImportOptions()).validate()
    path = _source_path(source)
    with _Unzipped(path) as root:
        gathered = _gather(root, options)
        try:
            candidates = [sample.candidate for sample in gathered.samples]
            groups = {sample.group for sample in gathered.samples if sample.group is not None}
            resolved, intensity = _resolve_intensity(options, candidates)
            problems, _, split_notes = _problems(gathered)
            classes = _counts(sample.label for sample in gathered.samples)
            return ImportPreview(
                format=gathered.format, layout=gathered.layout, source=str(path), samples=len(candidates),
                classes=classes,
                shapes=dict(Counter("x".join(map(str, _shown_axes(c, c.shape, options))) for c in candidates if c.shape)),
                spacings=dict(Counter(" x ".join(f"{s:g}" for s in _shown_axes(c, c.spacing, options)) + " mm"
                                      for c in candidates if c.spacing)),
                splits={name: count for name, count in Counter(s.split for s in gathered.samples if s.split).items()},
                groups=len(groups), skipped=gathered.skipped, unmatched_rows=gathered.unmatched_rows,
                series=dict(Counter(c.series for c in candidates if c.series)), notes=gathered.notes + split_notes,
                labels_csv=gathered.labels_csv.name if gathered.labels_csv else None, columns=gathered.columns,
                csv_columns=gathered.csv_columns, modality=_modality(candidates), window=resolved.window,
                normalization=resolved.normalization, intensity=intensity, problems=problems,
                positive_class=positive.guess(list(classes)),
            )
        finally:
            gathered.close()


def _shown_axes(candidate: readers.Candidate, values: tuple | None, options: ImportOptions) -> tuple | None:
    """A candidate's per-axis ``values`` (shape or spacing, as stored) in the order reorienting will give them."""
    if not (options.reorient and candidate.orientation and values and len(values) == 3):
        return values
    import nibabel

    ornt = nibabel.orientations.axcodes2ornt(tuple(candidate.orientation))
    shown = [values[0]] * 3
    for axis, (target, _) in enumerate(ornt):
        shown[int(target)] = values[axis]
    return tuple(shown)


# ------------------------------------------------------------------ reading
def _voxel_problem(voxels: np.ndarray) -> str | None:
    if voxels.size == 0:
        return "is empty (no voxels)"
    bad = int(np.count_nonzero(~np.isfinite(voxels)))
    if bad:
        nan = int(np.count_nonzero(np.isnan(voxels)))
        if nan == bad:
            return f"holds {bad} NaN voxels (nan_to_zero is off; turn it on to read them as 0)"
        return f"holds {bad} NaN or infinite voxels"
    low, high = float(voxels.min()), float(voxels.max())
    if low == high:
        return f"is empty (every voxel is {low:g})"
    return None


def _prepare(volume: readers.Volume, options: ImportOptions) -> np.ndarray:
    """One volume through the preprocessing: reorient, channels, intensities, resampling, normalisation."""
    voxels = np.asarray(volume.voxels, dtype=np.float32)
    if options.reorient and volume.affine is not None:
        voxels = preprocess.reorient_canonical(voxels, volume.affine)
    voxels = preprocess.select_channels(voxels, options.channels)
    if options.window is not None:
        voxels = preprocess.window(voxels, options.window)
    elif options.clip_percentiles is not None:
        voxels = preprocess.clip_percentiles(voxels, *options.clip_percentiles)
    if options.shape is not None and tuple(voxels.shape[:3]) != tuple(options.shape):
        voxels = np.stack([preprocess.resample(voxels[..., c], options.shape) for c in range(voxels.shape[-1])], axis=-1)
    return preprocess.normalize(voxels[np.newaxis], options.normalization)[0]


def _size_text(nbytes: int) -> str:
    return f"{nbytes / 1024**2:,.1f} MB" if nbytes >= 100 * 1024 else f"{nbytes / 1024:,.0f} KB"


class _Staging:
    """A hidden folder in data/imports/ that becomes the dataset when renamed; removed on any failure."""

    def __init__(self, name: str, max_bytes: int | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix=f".importing-{name}-", dir=paths.imports_dir()))
        self.raw = open(self.folder / "x.raw", "wb")
        self.hash = hashlib.sha256()
        self.count = 0
        self.sample_shape: tuple[int, ...] | None = None
        self.low, self.high = np.inf, -np.inf  # the range of the voxels written
        self.max_bytes = max_bytes
        self.written = 0

    def add(self, voxels: np.ndarray) -> None:
        self.low, self.high = min(self.low, float(np.min(voxels))), max(self.high, float(np.max(voxels)))
        data = np.ascontiguousarray(voxels, dtype=np.float32).tobytes()
        if self.max_bytes is not None and self.written + len(data) > self.max_bytes:
            raise DataError(
                f"This import would take more than {_size_text(self.max_bytes)} on the server's disk "
                f"(after {self.count} volumes), the most this lab allows it; import fewer volumes, or resample "
                "them smaller with the target shape. Nothing was imported."
            )
        self.written += len(data)
        self.raw.write(data)
        self.hash.update(data)
        self.count += 1

    def finish_volumes(self) -> None:
        """x.raw (the volumes one after another) becomes x.npy: a .npy header, then the same bytes."""
        self.raw.close()
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (self.count, *self.sample_shape)}
        with open(self.folder / "x.raw", "rb") as raw, open(self.folder / "x.npy", "wb") as target:
            np.lib.format.write_array_header_1_0(target, header)
            shutil.copyfileobj(raw, target, COPY_CHUNK_BYTES)  # sequential, bounded memory
        os.remove(self.folder / "x.raw")

    def discard(self) -> None:
        if not self.raw.closed:
            self.raw.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def import_dataset(
    source: str | os.PathLike,
    name: str,
    options: ImportOptions | None = None,
    *,
    replace: bool = False,
    progress: Callable[[ImportProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    check_splits: bool = False,
    positive_class: str | None = None,
    max_bytes: int | None = None,
    actor: str | None = None,
    demo_mode: bool | None = None,
) -> ImportResult:
    """Import ``source`` (a folder, an HDF5 / NPZ file or a zip) as the dataset ``name``.

    ``progress`` is called after every sample; ``cancel`` is checked between
    samples and, when it returns True, the import stops (ImportCancelled) and
    leaves nothing behind. ``positive_class`` (two classes only) is recorded in the manifest;
    None records the guess from the class names. ``max_bytes`` caps the volumes written (a hosted
    demo's allowance, engine/hosting/demo.py): past it the import stops with a DataError and leaves nothing.
    ``actor`` (a dashboard identity; None: the operator's CLI) is recorded as the dataset's owner;
    replacing a dataset is held to ``imported.check_owner``. Raises DataError / ConfigError with one
    sentence; among them the preview's first problem: one class or a class per sample, and with
    ``check_splits`` (the CLI and the Data page) a class too small for the splits.
    """
    started = time.perf_counter()
    imported.validate_name(name, list(DATASETS))
    options = (options or ImportOptions()).validate()
    if imported.exists(name) and not replace:
        raise DataError(f"A dataset named {name!r} already exists; choose another name or replace it (--replace).")
    actors.check_may_change(actor, "import")
    if imported.exists(name):
        imported.check_owner(name, actor, demo_mode, "replace")
    path = _source_path(source)
    with _Unzipped(path) as root:
        gathered = _gather(root, options)
        staging = None
        try:
            problems, nonsense, _ = _problems(gathered)
            if problems and (nonsense or check_splits):
                raise DataError(problems[0])
            options, intensity = _resolve_intensity(options, [sample.candidate for sample in gathered.samples])
            gathered.notes.append(f"Intensities: {intensity}.")
            staging = _Staging(name, max_bytes)
            kept, skipped, notes = _read_samples(gathered, options, staging, progress, cancel)
            result = _finish(name, path, gathered, options, staging, kept, skipped, notes, replace, started,
                             positive_class, actor)
            staging = None  # renamed into place
            return result
        finally:
            gathered.close()
            if staging is not None:
                staging.discard()


# A DICOM import reads its series in one process per usable core (pydicom decodes in Python, one core
# each) when they hold at least POOL_MIN_VOXELS in all: below that, starting the processes (about a
# second) costs more than it saves. CONV3D_LAB_IMPORT_WORKERS sets the number of processes whatever the
# size (1: in this process). Other formats read in this process.
IMPORT_WORKERS_ENV = "CONV3D_LAB_IMPORT_WORKERS"
POOLED_FORMATS = ("dicom",)
POOL_MIN_VOXELS = 16 * 2**20


def import_workers(samples: int, voxels: int | None = None) -> int:
    """Processes for reading ``samples`` series of ``voxels`` in all (None: unknown, counted as many): the
    environment's number, else the cores this process may use (1 for a small import); at most one per sample."""
    raw = os.environ.get(IMPORT_WORKERS_ENV, "").strip()
    try:
        if raw:
            wanted = int(raw)
        elif voxels is not None and voxels < POOL_MIN_VOXELS:
            wanted = 1
        else:
            wanted = len(os.sched_getaffinity(0))
    except ValueError:
        raise ConfigError([(f"{IMPORT_WORKERS_ENV}={raw!r} is not a whole number; give the number of processes "
                            "an import may use (1 reads in this process) or unset it.")]) from None
    return max(1, min(wanted, samples))


def _load_sample(read: Callable[[], readers.Volume], options: ImportOptions
                 ) -> tuple[np.ndarray | None, str | None, bool, int]:
    """One sample read and prepared: (voxels or None, why it is skipped or None, read without an orientation,
    NaN voxels replaced by 0). Runs in this process or in a worker of the import's pool."""
    nan_count = 0
    try:
        volume = read()
        if options.nan_to_zero:
            nan = np.isnan(volume.voxels)
            if nan.any():
                nan_count = int(np.count_nonzero(nan))
                volume.voxels = np.where(nan, np.float32(0), volume.voxels)
            del nan
        problem = _voxel_problem(np.asarray(volume.voxels))
    except DataError as e:
        return None, str(e), False, 0
    except Exception as e:  # noqa: BLE001 - a reader library failing on one file must not end the import
        return None, f"cannot be read ({type(e).__name__}: {e})", False, 0
    if problem is not None:
        return None, problem, False, nan_count
    try:
        voxels = _prepare(volume, options)
    except (ValueError, MemoryError) as e:  # e.g. an orientation nibabel cannot resolve
        return None, f"cannot be preprocessed ({type(e).__name__}: {e})", False, nan_count
    return voxels, None, bool(options.reorient and volume.affine is None), nan_count


def pool_start_method() -> str:
    """"fork" from a process with one thread and no TensorFlow (the CLI, a worker before training): the
    pool starts at once, with nothing to import again; "spawn" otherwise (the dashboard's threads, or
    TensorFlow's, could hold a lock at the moment of a fork that the child would wait on forever)."""
    import sys
    import threading

    return "fork" if threading.active_count() == 1 and "tensorflow" not in sys.modules else "spawn"


def _loaded_samples(gathered: _Gathered, options: ImportOptions, cancel):
    """(sample, ``_load_sample``'s result) in the samples' order; ``cancel`` is checked before each.

    DICOM series are read in a process pool (``pool_start_method``) with at most two samples per worker
    in flight, so memory stays a few volumes; other formats in this process.
    """
    samples = gathered.samples
    workers = 1
    if gathered.format in POOLED_FORMATS:
        shapes = [sample.candidate.shape for sample in samples]
        voxels = None if None in shapes else sum(int(np.prod(shape)) for shape in shapes)
        workers = import_workers(len(samples), voxels)
    if workers == 1:
        for sample in samples:
            if cancel is not None and cancel():
                raise ImportCancelled("The import was cancelled; nothing was written.")
            yield sample, _load_sample(sample.candidate.read, options)
        return
    import concurrent.futures
    import multiprocessing
    from collections import deque

    context = multiprocessing.get_context(pool_start_method())
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque = deque()
        queued = iter(samples)
        try:
            for sample in queued:
                pending.append((sample, pool.submit(_load_sample, sample.candidate.read, options)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                if cancel is not None and cancel():
                    raise ImportCancelled("The import was cancelled; nothing was written.")
                sample, future = pending.popleft()
                result = future.result()
                following = next(queued, None)
                if following is not None:
                    pending.append((following, pool.submit(_load_sample, following.candidate.read, options)))
                yield sample, result
        finally:
            for _, future in pending:
                future.cancel()


def _read_samples(gathered: _Gathered, options: ImportOptions, staging: _Staging, progress, cancel):
    skipped = dict(gathered.skipped)
    notes = list(gathered.notes)
    kept: list[_Sample] = []
    total = len(gathered.samples)
    unoriented = 0
    nan_replaced: dict[str, int] = {}
    for done, (sample, (voxels, problem, no_affine, nan_count)) in enumerate(
            _loaded_samples(gathered, options, cancel), start=1):
        candidate = sample.candidate
        unoriented += no_affine
        if nan_count:
            nan_replaced[candidate.path] = nan_count
        if problem is None:
            if staging.sample_shape is None:
                staging.sample_shape = tuple(voxels.shape)
            if voxels.shape[-1] != staging.sample_shape[-1]:
                problem = (f"has {voxels.shape[-1]} channels where the first sample has {staging.sample_shape[-1]}; "
                           "choose channels='first' or 'mean' (--channels)")
            elif voxels.shape != staging.sample_shape:
                raise DataError(
                    f"{candidate.path} has shape {'x'.join(map(str, voxels.shape[:3]))} but "
                    f"{kept[0].candidate.path} has {'x'.join(map(str, staging.sample_shape[:3]))}; resample every "
                    "volume to one shape with shape (--shape D H W)."
                )
        if problem is None:
            staging.add(voxels)
            kept.append(sample)
        else:
            skipped[candidate.path] = problem
        if progress is not None:
            progress(ImportProgress(done=done, total=total, path=candidate.path, skipped=len(skipped)))
    if unoriented and gathered.format in ORIENTED_FORMATS:
        notes.append(f"{unoriented} samples carry no orientation ({gathered.format}); they were not reoriented.")
    if nan_replaced:
        first, count = next(iter(nan_replaced.items()))
        notes.append(
            f"NaN voxels were replaced by 0 in {len(nan_replaced)} sample{'s' if len(nan_replaced) > 1 else ''} "
            f"(e.g. {first}: {count} voxels; NIfTI files often store the background as NaN); set nan_to_zero off "
            "(--keep-nan) to skip such samples instead."
        )
    return kept, skipped, notes


def skip_summary(skipped: dict[str, str]) -> str:
    """Skipped files grouped by reason, the commonest first: a few files per reason, a few reasons."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for path, reason in skipped.items():
        by_reason[reason].append(path)
    groups = sorted(by_reason.items(), key=lambda item: -len(item[1]))
    parts = []
    for reason, paths_ in groups[:LISTED_REASONS]:
        shown = ", ".join(paths_[:LISTED_PER_REASON])
        if len(paths_) > LISTED_PER_REASON:
            shown += f" and {len(paths_) - LISTED_PER_REASON} more"
        parts.append(f"{len(paths_)} ({shown}) {reason}" if len(paths_) > 1 else f"{shown} {reason}")
    if len(groups) > LISTED_REASONS:
        parts.append(f"and {len(groups) - LISTED_REASONS} other reasons (see the list of skipped files)")
    return "; ".join(parts)


def _nothing_left(gathered: _Gathered, skipped: dict[str, str]) -> DataError:
    if not skipped:
        return DataError("Nothing to import: no scans were found in the source.")
    return DataError(
        f"Nothing usable remains to import: all {len(skipped)} files or samples were skipped: {skip_summary(skipped)}."
    )


def _emptied_classes(gathered: _Gathered, kept: list[_Sample], skipped: dict[str, str]) -> dict[str, dict[str, str]]:
    """Classes that skips left without a sample, each with the skips that emptied it."""
    class_of = dict(gathered.class_of)
    class_of.update({sample.candidate.path: sample.label for sample in gathered.samples})
    remaining = {sample.label for sample in kept}
    emptied: dict[str, dict[str, str]] = {}
    for path, reason in skipped.items():
        label = class_of.get(path)
        if label is not None and label not in remaining:
            emptied.setdefault(label, {})[path] = reason
    return emptied


def _finish(name, path, gathered, options, staging, kept, skipped, notes, replace, started,
            positive_class=None, actor=None) -> ImportResult:
    if not kept:
        raise _nothing_left(gathered, skipped)
    class_names = labels_module.sort_classes({sample.label for sample in kept})
    emptied = _emptied_classes(gathered, kept, skipped)
    if len(class_names) < 2:
        why = "".join(f" Class {label!r} lost every sample: {skip_summary(lost)}." for label, lost in emptied.items())
        raise DataError(
            f"Only one class ({class_names[0]!r}) remains among the {len(kept)} usable samples; a classifier needs "
            f"at least two (check the class folders or the label column).{why}"
        )
    for label, lost in emptied.items():
        notes.append(f"Class {label!r} lost every sample and is left out: {skip_summary(lost)}.")
    sentence = positive.problem(class_names, positive_class, field="The positive class")
    if sentence:
        raise DataError(sentence)
    chosen_positive = positive_class if positive_class is not None else positive.guess(class_names)
    staging.finish_volumes()
    y = np.asarray([class_names.index(sample.label) for sample in kept], dtype=np.int64)
    split = np.asarray([SPLIT_NAMES.index(s.split) if s.split else UNASSIGNED for s in kept], dtype=np.int8)
    group_names = [sample.group for sample in kept]
    arrays = {"y": y, "split": split}
    distinct = {g for g in group_names if g is not None}
    if len(distinct) == 1 and len(kept) > 1 and None not in group_names:
        notes.append(f"Every sample has the same group ({next(iter(distinct))!r}); the groups were ignored.")
        distinct = set()
    if distinct:
        codes: dict[str, int] = {}
        # A sample without a group stands alone: it gets a group of its own.
        arrays["groups"] = np.asarray(
            [codes.setdefault(g if g is not None else f"\0{i}", len(codes)) for i, g in enumerate(group_names)],
            dtype=np.int64,
        )
    np.savez(staging.folder / "labels.npz", **arrays)
    digest = staging.hash.copy()
    digest.update(json.dumps({"options": options.to_dict(), "format": gathered.format, "classes": class_names,
                              "version": IMPORT_VERSION}, sort_keys=True).encode())
    for array in arrays.values():
        digest.update(array.tobytes())
    fingerprint = digest.hexdigest()[:16]
    class_counts = dict(zip(class_names, count_per_class(y, len(class_names))))
    splits = {name_: int(np.sum(split == code)) for code, name_ in enumerate(SPLIT_NAMES) if np.any(split == code)}
    manifest = {
        "name": name, "version": IMPORT_VERSION, "created_at": time.time(), "fingerprint": fingerprint,
        "source": {"path": str(path), "name": path.name},
        "owner": actor,  # who may delete or replace it on a demo (None: the operator's CLI)
        "reader": {"format": gathered.format, "layout": gathered.layout, "series": options.series,
                   "volume_index": options.volume_index, "x_key": options.x_key, "y_key": options.y_key,
                   "labels_csv": gathered.labels_csv.name if gathered.labels_csv else None,
                   "columns": gathered.columns},
        "preprocessing": {key: value for key, value in options.to_dict().items()
                          if key in ("shape", "reorient", "nan_to_zero", "window", "clip_percentiles", "normalization",
                                     "channels")},
        "orientations": dict(Counter(s.candidate.orientation for s in kept if s.candidate.orientation)),
        "options": options.to_dict(),
        "num_samples": len(kept), "volume_shape": list(staging.sample_shape), "class_names": class_names,
        "value_range": [staging.low, staging.high],
        "positive_class": chosen_positive,
        "class_counts": class_counts, "splits": splits, "num_groups": len(distinct),
        "samples": [
            {"source": s.candidate.path, "label": s.label, "group": s.group, "split": s.split,
             **({"series": s.candidate.series} if s.candidate.series else {}), **_geometry(s.candidate)}
            for s in kept
        ],
        "skipped": skipped, "unmatched_rows": gathered.unmatched_rows, "notes": notes,
    }
    (staging.folder / imported.MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    artefacts.publish_dataset(staging.folder, name)  # with CONV3D_LAB_ARTIFACTS set; a failure leaves nothing here
    _move_into_place(staging.folder, name, replace)
    return ImportResult(
        name=name, path=str(imported.folder(name)), samples=len(kept), classes=class_counts, splits=splits,
        groups=len(distinct), volume_shape=list(staging.sample_shape), skipped=skipped,
        unmatched_rows=gathered.unmatched_rows, fingerprint=fingerprint,
        seconds=round(time.perf_counter() - started, 3), notes=notes, positive_class=chosen_positive,
    )


def _move_into_place(staging: Path, name: str, replace: bool) -> None:
    final = paths.imports_dir() / name  # the local folder as it is (imported.folder would fetch the root's)
    if final.exists():
        if not replace:
            raise DataError(f"A dataset named {name!r} was created meanwhile; choose another name or replace it.")
        old = Path(tempfile.mkdtemp(prefix=".replaced-", dir=paths.imports_dir()))
        os.rename(final, old / name)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.rename(staging, final)


# ------------------------------------------------------------------ new scans for a trained model
def _geometry(candidate: readers.Candidate) -> dict[str, Any]:
    """What the headers told of a sample (shape, spacing, modality), kept in the manifest so a new scan
    given to a model trained on this dataset can be compared with the training data."""
    found = {"shape": list(candidate.shape) if candidate.shape else None,
             "spacing": list(candidate.spacing) if candidate.spacing else None, "modality": candidate.modality}
    return {key: value for key, value in found.items() if value is not None}


@dataclass
class ScanInput:
    """One new scan read and preprocessed exactly as the dataset's samples were (``read_inputs``)."""

    path: str  # shown to people, relative to the source
    voxels: np.ndarray  # (D, H, W, C) float32 after the dataset's preprocessing
    format: str
    shape: tuple[int, ...] | None  # (D, H, W) as the headers tell, before preprocessing
    spacing: tuple[float, ...] | None
    modality: str | None


def _array_candidates(path: Path, fmt: str, options: ImportOptions) -> readers.Scan:
    """Rows of an HDF5 / NPZ file; a file of volumes without labels is read too (labels are not needed here)."""
    try:
        return readers.scan_arrays(path, fmt, options)
    except DataError:
        from engine.datasets.readers import _arrays

        path = readers.array_file(path, fmt)
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        else:
            import h5py

            with h5py.File(path, "r") as handle:
                arrays = {name: item[()] for name, item in handle.items() if isinstance(item, h5py.Dataset)}
        shapes = {name: array.shape for name, array in arrays.items()}
        x_name = _arrays.choose(shapes, options.x_key, _arrays.VOLUME_NAMES, "volumes", "x_key", path.name,
                                _arrays.looks_like_volumes)
        volumes = arrays[x_name]
        return readers.Scan(format=fmt, candidates=_arrays.candidates(path.name, x_name, volumes,
                                                                      [""] * len(volumes), None), layout="arrays")


def read_inputs(source: str | os.PathLike, options: ImportOptions) -> tuple[list[ScanInput], dict[str, str]]:
    """Every scan in ``source`` (a DICOM series folder, a NIfTI file, a zip, an HDF5 / NPZ file of volumes)
    through the same reading and ``_prepare`` as an import with ``options``; returns (inputs, skipped: path -> why).

    The format is the source's own (detected); everything else (reorientation, channels, window, resampling,
    normalisation, the DICOM series rule) comes from ``options``, i.e. from the dataset's manifest.
    """
    options = ImportOptions(**{**options.to_dict(), "format": "auto", "labels_csv": None}).validate()
    if not os.fspath(source).strip():
        raise DataError("A path is empty; give a DICOM series folder, a NIfTI file, a zip or an HDF5 / NPZ file.")
    path = _source_path(source)
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path.")
    with _Unzipped(path) as root:
        root = _unwrap(root)
        fmt = readers.detect_format(root)
        scan = _array_candidates(root, fmt, options) if fmt in readers.ARRAY_FORMATS else readers.scan_files(root, fmt, options)
        try:
            inputs, skipped = [], dict(scan.skipped)
            for candidate in scan.candidates:
                try:
                    volume = candidate.read()
                    problem = _voxel_problem(np.asarray(volume.voxels))
                    voxels = None if problem else _prepare(volume, options)
                except (DataError, ValueError, MemoryError) as e:
                    problem, voxels = str(e), None
                if problem:
                    skipped[candidate.path] = problem
                    continue
                inputs.append(ScanInput(candidate.path, voxels, fmt, candidate.shape, candidate.spacing,
                                        candidate.modality))
            return inputs, skipped
        finally:
            scan.close()
