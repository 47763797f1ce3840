"""Uploads and server folders the dashboard may import from.

``extract_zip`` unpacks an uploaded zip into a fresh folder with caps on the
entry count, each file's and the total uncompressed size and the compression
ratio (a zip bomb), and refuses absolute paths, ``..`` components, symbolic
links and anything that is not a plain file or folder; on any refusal the
folder is removed and nothing was written elsewhere. ``check_import_path``
refuses a server folder outside ``allowed_import_roots()``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine import paths, settings
from engine.datasets.readers.base import MAX_COMPRESSION_RATIO, compression_problem
from engine.errors import DataError

ROOTS_VARIABLE = "CONV3D_LAB_IMPORT_ROOTS"
COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 50_000  # files and folders in the archive
    max_file_bytes: int = 4 * 1024**3  # uncompressed size of one file
    max_total_bytes: int = 32 * 1024**3  # uncompressed size of everything
    max_ratio: float = MAX_COMPRESSION_RATIO  # uncompressed / compressed size of one file (scans compress 2-20x)


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"{name!r} is a symbolic link"
    # Zips written without Unix modes (Windows, Python's writestr) carry no file type: a plain file.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"{name!r} is not a plain file or folder"
    if info.flag_bits & 0x1:
        return f"{name!r} is encrypted"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return f"{name!r} has an absolute path"
    if ".." in PurePosixPath(normalised).parts:
        return f"{name!r} climbs out of the archive with '..'"
    if any(ord(character) < 32 for character in name):
        return f"{name!r} has control characters in its name"
    return None


def extract_zip(zip_path: str | os.PathLike, limits: ZipLimits = ZipLimits(), parent: str | os.PathLike | None = None) -> Path:
    """Extract ``zip_path`` into a fresh folder (under ``parent``, default data/imports/) and return it."""
    zip_path = Path(zip_path)
    parent_dir = Path(parent) if parent is not None else paths.imports_dir()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{zip_path.name} is not a readable zip file ({e}).") from e
    with archive:
        entries = archive.infolist()
        _check_entries(zip_path.name, entries, limits)
        folder = Path(tempfile.mkdtemp(prefix=".unzipped-", dir=parent_dir))
        try:
            _extract(zip_path.name, archive, entries, folder, limits)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise DataError(f"{zip_path.name} is damaged and was not extracted ({e}).") from e
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return folder


def _check_entries(zip_name: str, entries: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse the archive from its directory alone, before anything is written."""
    if len(entries) > limits.max_entries:
        raise DataError(f"{zip_name} holds {len(entries)} entries, more than the {limits.max_entries} allowed.")
    total = 0
    for info in entries:
        problem = _entry_problem(info)
        if problem:
            raise DataError(f"{zip_name} was refused: {problem}; nothing was extracted.")
        if info.file_size > limits.max_file_bytes:
            raise DataError(
                f"{zip_name} was refused: {info.filename!r} unpacks to {info.file_size:,} bytes, more than the "
                f"{limits.max_file_bytes:,} allowed per file."
            )
        problem = compression_problem(info, limits.max_ratio)
        if problem:
            raise DataError(f"{zip_name} was refused: {problem}.")
        total += info.file_size
    if total > limits.max_total_bytes:
        raise DataError(
            f"{zip_name} was refused: it unpacks to {total:,} bytes, more than the {limits.max_total_bytes:,} allowed."
        )


def _extract(zip_name: str, archive: zipfile.ZipFile, entries, folder: Path, limits: ZipLimits) -> None:
    real_folder = folder.resolve()
    written_total = 0
    for info in entries:
        relative = PurePosixPath(info.filename.replace("\\", "/"))
        target = folder.joinpath(*relative.parts)
        if not target.resolve().is_relative_to(real_folder):
            raise DataError(f"{zip_name} was refused: {info.filename!r} would be written outside the folder.")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise DataError(f"{zip_name} was refused: it holds {info.filename!r} twice.")
        # The sizes in the directory may lie: count what is actually written.
        written = 0
        with archive.open(info) as reader, open(target, "xb") as writer:
            while block := reader.read(COPY_BLOCK):
                written += len(block)
                written_total += len(block)
                if written > min(info.file_size, limits.max_file_bytes) or written_total > limits.max_total_bytes:
                    raise DataError(f"{zip_name} was refused: {info.filename!r} unpacks to more than it declares.")
                writer.write(block)


def allowed_import_roots() -> list[Path]:
    """Folders the dashboard may import from: ``$CONV3D_LAB_IMPORT_ROOTS`` (os.pathsep-separated),
    default the data folder and the user's home."""
    raw = os.environ.get(ROOTS_VARIABLE)
    if raw:
        return [Path(os.path.expanduser(part)).resolve() for part in raw.split(os.pathsep) if part.strip()]
    return [paths.data_root().resolve(), Path.home().resolve()]


def check_import_path(path: str | os.PathLike, demo_mode: bool | None = None) -> Path:
    """``path`` resolved (links followed) when it lies inside an allowed root; DataError otherwise.

    A hosted demo (``demo_mode``, default ``$CONV3D_LAB_DEMO``) imports nothing from server paths.
    """
    if settings.demo_mode(demo_mode):
        raise DataError("This demo does not import from folders on the server; upload your files instead.")
    resolved = Path(os.path.expanduser(os.fspath(path))).resolve()
    roots = allowed_import_roots()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise DataError(
            f"{resolved} is outside the folders the dashboard may import from ({', '.join(map(str, roots))}); "
            f"move the data there or add its folder to {ROOTS_VARIABLE}."
        )
    if not resolved.exists():
        raise DataError(f"{resolved} does not exist; check the path.")
    return resolved
