"""NPZ: the MedMNIST 3D layout (train/val/test images and labels) or generic x / y arrays.

Always ``allow_pickle=False``: an upload must never run code when it is read.
Before any array is read, the .npy header of every member is read from the zip
(``numpy.lib.format``) and checked: the declared size against the member's real
size and the import cap, and the member's compression ratio (a zip bomb). Labels are
read whole (under the cap); volumes are streamed a row at a time from the zip
member, so a preview reads no voxel and an import holds one volume at a time.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets.readers import _arrays
from engine.datasets.readers.base import MAX_COMPRESSION_RATIO, Scan, compression_problem, size_problem
from engine.errors import DataError

MEDMNIST_SPLITS = {"train": "train", "val": "val", "test": "test"}


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, str, int, bool]]:
    """Shape and dtype of every array in the .npz, from the .npy headers; DataError for a hostile member."""
    found: dict[str, tuple[tuple[int, ...], np.dtype, str, int, bool]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                problem = compression_problem(info, MAX_COMPRESSION_RATIO)
                if problem:
                    raise DataError(f"{path.name} was refused: its array {problem}; nothing was read.")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                    header_bytes = member.tell()
                if dtype.hasobject:
                    raise DataError(f"{path.name} is not a readable NumPy .npz file without pickled objects "
                                    f"(its array {name!r} holds Python objects).")
                declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if declared + header_bytes > info.file_size:
                    raise DataError(
                        f"{path.name} was refused: its array {name!r} declares shape {tuple(shape)} "
                        f"({declared:,} bytes) but holds {info.file_size:,} bytes (a damaged or hostile header); "
                        "nothing was read.")
                found[name] = (tuple(int(n) for n in shape), dtype, info.filename, header_bytes, bool(fortran))
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path.name} is not a readable NumPy .npz file without pickled objects ({e}).") from e
    return found


class _RowReader:
    """The rows of one .npy member, read one at a time from the zip (bounded memory whatever the array's size).

    Rows are read in order by the importer, so the member is read forward once; a row before the current
    position reopens it (a deflated member cannot seek backwards cheaply).
    """

    def __init__(self, path: Path, member: str, shape: tuple[int, ...], dtype: np.dtype, offset: int):
        self.path, self.member, self.shape, self.dtype, self.offset = path, member, shape, dtype, offset
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.archive = self.handle = None

    def __getitem__(self, index: int) -> np.ndarray:
        if self.handle is None:
            self.archive = zipfile.ZipFile(self.path)
            self.handle = self.archive.open(self.member)
        self.handle.seek(self.offset + index * self.row_bytes)
        data = self.handle.read(self.row_bytes)
        if len(data) != self.row_bytes:
            raise DataError(f"row {index} of {self.member!r} is cut short (the file is damaged)")
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape[1:])

    def close(self) -> None:
        for part in (self.handle, self.archive):
            if part is not None:
                part.close()
        self.archive = self.handle = None


def scan(path: Path, options: Any) -> Scan:
    headers = _headers(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path.name} is not a readable NumPy .npz file without pickled objects ({e}).") from e
    try:
        return _scan(path, options, archive, headers)
    except BaseException:
        archive.close()
        raise


def _load(archive, path: Path, name: str, headers) -> np.ndarray:
    """An array read whole (labels), once its declared size is known to fit the cap."""
    shape, dtype = headers[name][:2]
    problem = size_problem(shape, dtype.itemsize, per_volume=False)
    if problem:
        raise DataError(f"{path.name} was refused: its array {name!r} {problem}.")
    try:
        return archive[name]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path.name}: its array {name!r} cannot be read ({e}).") from e


def _scan(path: Path, options: Any, archive, headers) -> Scan:
    shapes = {name: header[0] for name, header in headers.items()}
    result = Scan(format="npz", candidates=[], closers=[archive.close])
    x_key, y_key = getattr(options, "x_key", None), getattr(options, "y_key", None)
    splits = [split for split in MEDMNIST_SPLITS if f"{split}_images" in shapes and f"{split}_labels" in shapes]
    if x_key is None and y_key is None and splits:
        result.layout = "medmnist"
        for split in splits:
            name = f"{split}_images"
            _arrays.row_shape(shapes[name], f"{path.name}:{name}")  # 2D images are refused before labels are read
            labels = _arrays.label_strings(_load(archive, path, f"{split}_labels", headers), f"{path.name}:{split}_labels",
                                           result.notes)
            result.candidates += _arrays.candidates(path.name, name, _rows(path, archive, name, headers, result),
                                                    labels, MEDMNIST_SPLITS[split])
        return result
    if not shapes:
        raise DataError(f"{path.name} holds no arrays.")
    result.layout = "arrays"
    if x_key is None:
        _arrays.refuse_images(shapes, path.name)
    x_name = _arrays.choose(shapes, x_key, _arrays.VOLUME_NAMES, "volumes", "x_key (--x-key)", path.name,
                            _arrays.looks_like_volumes)
    y_name = _arrays.choose(shapes, y_key, _arrays.LABEL_NAMES, "labels", "y_key (--y-key)", path.name,
                            lambda shape: _arrays.looks_like_labels(shape) and shape[:1] == shapes[x_name][:1])
    _arrays.row_shape(shapes[x_name], f"{path.name}:{x_name}")
    labels = _arrays.label_strings(_load(archive, path, y_name, headers), f"{path.name}:{y_name}", result.notes)
    result.candidates = _arrays.candidates(path.name, x_name, _rows(path, archive, x_name, headers, result), labels,
                                           None)
    return result


def _rows(path: Path, archive, name: str, headers, result: Scan):
    """Row access to a volumes array: streamed from the zip (C order), or read whole (Fortran order, capped)."""
    shape, dtype, member, offset, fortran = headers[name]
    if not fortran and dtype.kind in "biuf" and len(shape) >= 2:
        rows = _RowReader(path, member, shape, dtype, offset)
        result.closers.append(rows.close)
        return rows
    return _load(archive, path, name, headers)
