"""Labels for imported scans: one folder per class, or a CSV of ids, labels, groups and splits.

Ids are matched the way people write them: case-insensitively, without the
scan's extension, and numeric ids equal whatever their leading zeros, so a row
``00012`` labels the folder ``12``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DataError

# Column names recognised without being named (compared case-insensitively).
ID_COLUMNS = ("id", "file", "filename", "file_name", "path", "folder", "sample", "sample_id", "subject",
              "subject_id", "case", "case_id", "image", "scan", "patient", "patient_id", "patientid", "brats21id")
LABEL_COLUMNS = ("label", "class", "target", "y", "diagnosis", "category", "mgmt_value", "outcome")
GROUP_COLUMNS = ("group", "patient", "patient_id", "patientid", "subject", "subject_id")
SPLIT_COLUMNS = ("split", "subset", "fold_set", "partition")
SPLIT_VALUES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "testing": "test", "": None}
# What a labels CSV's columns can be used for.
ROLES = ("id", "label", "group", "split")
# ``labels_csv`` set to this: class folders, even when a CSV lies at the top of the source.
NO_LABELS_CSV = "none"
# A group or split column set to this: the CSV has none (nothing is guessed for that role).
NO_COLUMN = "-"
SCAN_EXTENSIONS = (".nii.gz", ".nii", ".dcm", ".h5", ".npz", ".npy")


def normalise_id(text: str) -> str:
    """The form two ids are compared in: trimmed, case-folded, no scan extension, no leading zeros."""
    key = str(text).strip().replace("\\", "/").rstrip("/").split("/")[-1].casefold()
    for extension in SCAN_EXTENSIONS:
        if key.endswith(extension):
            key = key[: -len(extension)]
            break
    return str(int(key)) if key.isdigit() else key


@dataclass
class LabelRow:
    id: str
    label: str
    group: str | None = None
    split: str | None = None


@dataclass
class LabelTable:
    path: Path
    rows: dict[str, LabelRow] = field(default_factory=dict)  # normalised id -> row
    columns: dict[str, str | None] = field(default_factory=dict)  # role -> column used
    header: list[str] = field(default_factory=list)  # every column of the file, in order

    def match(self, ids: tuple[str, ...]) -> tuple[str, LabelRow] | None:
        for sample_id in ids:
            key = normalise_id(sample_id)
            if key in self.rows:
                return key, self.rows[key]
        return None


def _values(records: list[list[str]], index: int) -> list[str]:
    return [record[index].strip() for record in records if index < len(record) and record[index].strip()]


def _id_by_values(header: list[str], records: list[list[str]], taken: set[str],
                  sample_ids: set[str]) -> str | None:
    """The column whose values name the most scans (folder or file names); None when none names any."""
    best, best_hits = None, 0
    for index, name in enumerate(header):
        if name in taken:
            continue
        hits = len({normalise_id(value) for value in _values(records, index)} & sample_ids)
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def _split_by_values(header: list[str], records: list[list[str]], taken: set[str]) -> str | None:
    """A column whose every value is train / val / test (or a spelling of them)."""
    for index, name in enumerate(header):
        values = _values(records, index)
        if name not in taken and values and all(v.casefold() in SPLIT_VALUES for v in values) \
                and len({SPLIT_VALUES[v.casefold()] for v in values}) >= 2:
            return name
    return None


def _label_by_values(header: list[str], records: list[list[str]], taken: set[str]) -> str | None:
    """The free column with the fewest distinct values (at least two, fewer than the rows): a class label."""
    rows = len(records)
    best, best_count = None, None
    for index, name in enumerate(header):
        if name in taken:
            continue
        distinct = len(set(_values(records, index)))
        if 2 <= distinct < max(rows, 3) and (best_count is None or distinct < best_count):
            best, best_count = name, distinct
    return best


def _pick(role: str, wanted: str | None, header: list[str], known: tuple[str, ...], taken: set[str],
          filename: str) -> str | None:
    """The column named for ``role`` (DataError when it is not in the file), else one recognised by its name."""
    by_folded = {name.strip().casefold(): name for name in header}
    if wanted is not None:
        if wanted.strip().casefold() not in by_folded:
            raise DataError(f"{filename} has no column {wanted!r} for the {role}; its columns are {', '.join(header)}.")
        return by_folded[wanted.strip().casefold()]
    for name in known:
        if name in by_folded and by_folded[name] not in taken:
            return by_folded[name]
    return None


def _cannot_tell(role: str, header: list[str], filename: str) -> DataError:
    return DataError(
        f"Cannot tell which column of {filename} holds the {role}; its columns are {', '.join(header)}; "
        f"name it with {role}_column (--{role}-column)."
    )


def guess_columns(header: list[str], records: list[list[str]], filename: str, wanted: dict[str, str | None],
                  sample_ids: set[str] | None = None) -> dict[str, str | None]:
    """Role (id, label, group, split) -> column, from the names asked for, the usual names and the values.

    The id is the column whose values name the most scans (when ``sample_ids``, the
    normalised ids of the scans found, are given), else one with a usual name; the
    split a column of usual name or of train / val / test values; the label a column
    of usual name, else the free column with the fewest distinct values; the group
    (patient) only a column of usual name, since a wrong group would silently change
    the splits.
    """
    refused = {role for role in ("group", "split") if wanted.get(role) == NO_COLUMN}
    columns: dict[str, str | None] = {role: _pick(role, wanted.get(role), header, (), set(), filename)
                                      if wanted.get(role) and role not in refused else None for role in ROLES}
    taken = {name for name in columns.values() if name}

    def claim(role: str, name: str | None) -> None:
        if name is not None and columns[role] is None and role not in refused:
            columns[role] = name
            taken.add(name)

    if sample_ids:
        claim("id", _id_by_values(header, records, taken, sample_ids))
    claim("id", _pick("id", None, header, ID_COLUMNS, taken, filename))
    claim("split", _pick("split", None, header, SPLIT_COLUMNS, taken, filename))
    claim("split", _split_by_values(header, records, taken))
    claim("label", _pick("label", None, header, LABEL_COLUMNS, taken, filename))
    claim("group", _pick("group", None, header, GROUP_COLUMNS, taken, filename))
    claim("label", _label_by_values(header, records, taken))
    free = [name for name in header if name not in taken]
    if columns["id"] is None and free:
        claim("id", free[0])
        free = free[1:]
    if columns["label"] is None and len(free) == 1:
        claim("label", free[0])
    for role in ("id", "label"):
        if columns[role] is None:
            raise _cannot_tell(role, header, filename)
    return columns


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(65536)
            handle.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(handle, dialect)
            header = [name.strip() for name in next(reader, [])]
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Cannot read the labels file {path.name} ({e}); it must be a UTF-8 CSV with a header row.") from e
    if len(header) < 2:
        raise DataError(f"{path.name} must have a header row and at least two columns (an id and a label).")
    return header, records


def read_csv(path: Path, id_column: str | None = None, label_column: str | None = None,
             group_column: str | None = None, split_column: str | None = None,
             sample_ids: tuple[str, ...] | list[str] | None = None) -> LabelTable:
    """The rows of a labels CSV keyed by normalised id; raises DataError naming the fix.

    ``sample_ids`` (what the scans found are called) lets the id column be guessed
    from its values; see ``guess_columns``.
    """
    header, records = _read_rows(path)
    wanted = {"id": id_column, "label": label_column, "group": group_column, "split": split_column}
    known_ids = {normalise_id(value) for value in sample_ids} if sample_ids else None
    columns = guess_columns(header, records, path.name, wanted, known_ids)
    index = {role: header.index(name) for role, name in columns.items() if name}
    table = LabelTable(path=path, columns=columns, header=list(header))
    for line, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue
        cells = {role: record[i].strip() if i < len(record) else "" for role, i in index.items()}
        if not cells["id"] or not cells["label"]:
            raise DataError(f"{path.name} line {line} has no {'id' if not cells['id'] else 'label'}; fill it in or remove the line.")
        split = cells.get("split", "")
        if split.casefold() not in SPLIT_VALUES:
            raise DataError(
                f"{path.name} line {line} has split {split!r}; use train, val or test (or leave it empty)."
            )
        key = normalise_id(cells["id"])
        if key in table.rows:
            raise DataError(
                f"{path.name} lists the id {cells['id']!r} twice (line {line} and an earlier one, compared without "
                "case and leading zeros); keep one row per sample."
            )
        table.rows[key] = LabelRow(cells["id"], cells["label"], cells.get("group") or None,
                                   SPLIT_VALUES[split.casefold()])
    if not table.rows:
        raise DataError(f"{path.name} has no rows below its header.")
    return table


def find_labels_csv(root: Path) -> Path | None:
    """The labels file found without being named: the one ``*.csv`` at the top of ``root`` (None when there
    are none or several)."""
    if not root.is_dir():
        return None
    found = [path for path in root.iterdir()
             if path.is_file() and path.suffix.lower() == ".csv" and not path.name.startswith(".")]
    return found[0] if len(found) == 1 else None


def class_folders(root: Path) -> list[Path]:
    """The class folders of a one-folder-per-class tree (hidden ones left out), sorted by name."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")
    if not folders:
        raise DataError(
            f"{root.name} has no class folders; put the scans of each class in a folder named after the class, "
            "or give a labels CSV (--labels)."
        )
    return folders


def check_class_layout(root_name: str, groups_per_class: dict[str, list[str | None]], unwrapped: bool = False,
                       folder_samples: bool = False) -> None:
    """Refuse class folders that are patient or series folders: each holds a single scan, or one patient's scans.

    ``groups_per_class``: for each class folder, the group (DICOM PatientID, or None) of each sample it yields.
    A folder of single scans is refused when the tree was a single folder (``unwrapped``: tumour/patient01..03)
    or when its samples are folders (``folder_samples``: DICOM series, patient subfolders); two class folders
    holding one NIfTI file each stay a (tiny) dataset of two classes.
    Such a tree (``tumour/patient01..03``, or one folder per patient holding its DICOM series) would be
    imported as one class per patient: a dataset that trains on patient identity, not on the classes.
    """
    if len(groups_per_class) < 2:
        return
    names = list(groups_per_class)
    listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    how = (f"put them in one folder per class (e.g. {root_name}/<class>/{names[0]}), or give a labels CSV (--labels) "
           "with each one's class")
    where = (f"{root_name} is the only folder at the top, so it would be a single class, and the folders in it "
             if unwrapped else f"the folders under {root_name} ")
    if all(len(groups) == 1 for groups in groups_per_class.values()) and (unwrapped or folder_samples):
        raise DataError(f"Each of the folders under {root_name} ({listed}) holds a single scan: {where}look like "
                        f"patient or series folders, not classes; {how}.")
    patients = [set(groups) for groups in groups_per_class.values()]
    one_each = all(len(found) == 1 and None not in found for found in patients)
    if one_each and len({next(iter(found)) for found in patients}) == len(patients):
        raise DataError(f"Each of the folders under {root_name} ({listed}) holds the scans of one patient "
                        f"(DICOM PatientID): {where}look like patient folders, not classes; {how}.")


def sort_classes(names: set[str]) -> list[str]:
    """Class names in a stable order: numerically when every name is a number, else alphabetically."""
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names, key=lambda name: (name.casefold(), name))
