"""Uploaded files on the server: staged into a fresh hidden folder of data/imports/, found again, removed.

The Data page's import and the Predict page both stage uploads here; a folder is removed after the
import, when its preview is discarded, or (a tab closed meanwhile) a day later.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from engine import datasets, paths
from engine.hosting import demo
from engine.datasets import readers
from engine.errors import DataError
from ui import access


# Uploaded files are written into a fresh hidden folder of data/imports/ with this prefix (zips: extract_zip's).
UPLOAD_PREFIX = ".upload-"
UNZIPPED_PREFIX = ".unzipped-"
# Upload folders left behind by a closed tab are removed when the page is opened this long after.
UPLOAD_MAX_AGE_S = 24 * 3600
# A labels CSV uploaded next to a zip is written into this folder of the upload (beside the extracted zip).
UPLOADED_LABELS = "uploaded labels"


def _upload_name(name: str) -> str:
    """The file name an upload is written under; DataError for names that cannot be a file's."""
    base = str(name).replace("\\", "/").split("/")[-1]
    if not base or base in (".", "..") or base.startswith(".") or any(ord(c) < 32 for c in base) or len(base) > 255:
        raise DataError(f"The uploaded file name {str(name)[:80]!r} cannot be used; rename the file.")
    return base


def stage_upload(files: Sequence[tuple[str, bytes | memoryview]]) -> tuple[Path, Path]:
    """Write uploaded files (name, bytes) into a fresh folder of data/imports/; returns (that folder, the source).

    Several files are written side by side into one folder; a single zip is
    extracted with ``extract_zip`` (entry, size and ratio caps), and CSV files
    uploaded with it are written beside it into ``UPLOADED_LABELS`` (see
    ``uploaded_csvs``); a single HDF5 / NPZ file is its own source. The source is named after the upload (the zip's
    name, the file's, or "uploaded files"), which is what the dataset's record
    says it came from. The caller removes the folder (``discard_upload``) after
    the import or when the preview is discarded. Raises DataError.
    """
    if not files:
        raise DataError("Choose one or more files to upload first.")
    if access.demo():
        demo.check_upload(sum(len(content) for _, content in files))
    names = [_upload_name(name) for name, _ in files]
    duplicates = sorted({name for name in names if [n.casefold() for n in names].count(name.casefold()) > 1})
    if duplicates:
        raise DataError(f"Several uploaded files are named {duplicates[0]!r}; upload each file once.")
    zips = [name for name in names if name.lower().endswith(".zip")]
    others = [name for name in names if not name.lower().endswith((".zip", ".csv"))]
    if len(zips) > 1 or (zips and others):
        raise DataError(f"Upload {zips[0]!r} on its own (or with its labels CSV), or the scan files themselves "
                        "without a zip.")
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=paths.imports_dir()))
    try:
        if zips:
            content = dict(zip(names, (data for _, data in files)))
            archive = folder / zips[0]
            archive.write_bytes(content[zips[0]])
            source = folder / (zips[0][: -len(".zip")] or "upload")
            extracted = datasets.extract_zip(archive, demo.zip_limits() if access.demo() else None)
            try:
                extracted.rename(source)
            except OSError:
                shutil.rmtree(extracted, ignore_errors=True)
                raise
            archive.unlink()
            for name in names:
                if name != zips[0]:
                    (folder / UPLOADED_LABELS).mkdir(exist_ok=True)
                    with open(folder / UPLOADED_LABELS / name, "xb") as handle:
                        handle.write(content[name])
            return folder, source
        source = folder / "uploaded files"
        source.mkdir()
        for name, (_, data) in zip(names, files):
            with open(source / name, "xb") as handle:
                handle.write(data)
        if len(names) == 1 and readers.has_suffix(source / names[0], readers.HDF5_SUFFIXES + readers.NPZ_SUFFIXES):
            return folder, source / names[0]
        return folder, source
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def uploaded_csvs(upload: Path | None) -> list[Path]:
    """The CSV files uploaded beside a zip (``stage_upload``), sorted by name."""
    if upload is None or not (Path(upload) / UPLOADED_LABELS).is_dir():
        return []
    return sorted(path for path in (Path(upload) / UPLOADED_LABELS).iterdir() if path.is_file())


def _is_upload_folder(folder: Path) -> bool:
    return folder.parent == paths.imports_dir().resolve() and folder.name.startswith((UPLOAD_PREFIX, UNZIPPED_PREFIX))


def discard_upload(folder: str | Path | None) -> None:
    """Remove a folder made by ``stage_upload`` (anything else is left alone)."""
    if folder is None:
        return
    folder = Path(folder).resolve()
    if _is_upload_folder(folder):
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_uploads(max_age_s: float = UPLOAD_MAX_AGE_S) -> None:
    """Remove upload folders older than ``max_age_s`` (a tab closed while its preview was shown)."""
    now = time.time()
    for folder in paths.imports_dir().resolve().iterdir():
        try:
            if folder.is_dir() and _is_upload_folder(folder) and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def upload_key() -> str:
    """The uploader's key: ``data_upload``, then a new one after each import (which empties it)."""
    round_ = st.session_state.get("data_upload_round", 0)
    return "data_upload" if not round_ else f"data_upload_{round_}"


def next_upload_key() -> None:
    st.session_state["data_upload_round"] = st.session_state.get("data_upload_round", 0) + 1
