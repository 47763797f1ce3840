"""Zip uploads and server folders: traversal, bombs and links refused; nothing written outside."""

from __future__ import annotations

import os
import stat
import zipfile

import numpy as np
import pytest

from engine import datasets, paths
from engine.datasets import uploads
from engine.errors import DataError
from tests.datasets import scans


def _everything(root) -> set[str]:
    return {os.path.relpath(os.path.join(folder, name), root) for folder, dirs, files in os.walk(root)
            for name in dirs + files}


def test_a_good_zip_of_class_folders_imports(lab_home, tmp_path):
    with zipfile.ZipFile(tmp_path / "upload.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for label in ("a", "b"):
            for index in range(2):
                scans.write_nifti(tmp_path / "src" / f"{label}{index}.nii.gz",
                                  np.random.default_rng(index).random((6, 6, 6)).astype(np.float32))
                archive.write(tmp_path / "src" / f"{label}{index}.nii.gz", f"scans/{label}/{label}{index}.nii.gz")
    folder = datasets.extract_zip(tmp_path / "upload.zip")
    assert folder.parent == paths.imports_dir() and folder.name.startswith(".unzipped-")
    assert _everything(folder) >= {"scans/a/a0.nii.gz", "scans/b/b1.nii.gz"}
    result = datasets.import_dataset(tmp_path / "upload.zip", "zipped", datasets.ImportOptions(format="nifti"))
    assert result.classes == {"a": 2, "b": 2}  # the zip's one top folder holds the class folders
    assert sorted(name for name in os.listdir(paths.imports_dir()) if name.startswith(".")) == [folder.name]


@pytest.mark.parametrize("case", ["traversal", "absolute", "symlink", "bomb", "too_many", "too_big"])
def test_dangerous_zips_are_refused_and_nothing_is_written(lab_home, tmp_path, case):
    target = tmp_path / "upload.zip"
    limits = uploads.ZipLimits()
    expected = {
        "traversal": "climbs out of the archive with '..'", "absolute": "has an absolute path",
        "symlink": "is a symbolic link", "bomb": "a zip bomb", "too_many": "entries, more than the 3 allowed",
        "too_big": "more than the 1,000 allowed per file",
    }[case]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scans/a/ok.txt", "fine")
        if case == "traversal":
            archive.writestr("scans/../../../escaped.txt", "escaped")
        elif case == "absolute":
            archive.writestr("/tmp/escaped.txt", "escaped")
        elif case == "symlink":
            link = zipfile.ZipInfo("scans/a/link")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(link, "/etc/passwd")
        elif case == "bomb":
            archive.writestr("scans/a/zeros.bin", b"\0" * (20 * 1024 * 1024))  # ~1000x compression
        elif case == "too_many":
            for index in range(3):
                archive.writestr(f"scans/{index}.txt", "x")
            limits = uploads.ZipLimits(max_entries=3)
        else:
            archive.writestr("scans/a/big.bin", os.urandom(2000))
            limits = uploads.ZipLimits(max_file_bytes=1000)
    paths.imports_dir()
    outside_before = _everything(tmp_path)
    with pytest.raises(DataError, match=expected):
        datasets.extract_zip(target, limits)
    assert _everything(tmp_path) == outside_before  # nothing extracted anywhere, no folder left behind
    assert not any(name.startswith(".unzipped-") for name in os.listdir(paths.imports_dir()))
    assert not os.path.exists("/tmp/escaped.txt") or case != "absolute"


def test_a_zip_that_lies_about_its_sizes_is_stopped(lab_home, tmp_path):
    target = tmp_path / "liar.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("scans/data.bin", b"x" * 5000)
    raw = bytearray(target.read_bytes())
    # Shrink the declared size in the central directory to 100 bytes (the data stays 5,000).
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (100).to_bytes(4, "little")
    target.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="liar.zip (is damaged|was refused)"):
        datasets.extract_zip(target)
    assert not any(name.startswith(".unzipped-") for name in os.listdir(paths.imports_dir()))


def test_server_folders_outside_the_allowed_roots_are_refused(lab_home, tmp_path, monkeypatch):
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    (allowed / "scans").mkdir(parents=True)
    other.mkdir()
    monkeypatch.setenv(uploads.ROOTS_VARIABLE, os.pathsep.join([str(allowed), str(tmp_path / "also")]))
    assert datasets.allowed_import_roots() == [allowed.resolve(), (tmp_path / "also").resolve()]
    assert datasets.check_import_path(allowed / "scans") == (allowed / "scans").resolve()
    with pytest.raises(DataError, match="is outside the folders the dashboard may import from"):
        datasets.check_import_path(other)
    with pytest.raises(DataError, match="outside"):
        datasets.check_import_path(allowed / ".." / "other")
    (allowed / "sneaky").symlink_to(other)
    with pytest.raises(DataError, match="outside"):
        datasets.check_import_path(allowed / "sneaky")
    monkeypatch.delenv(uploads.ROOTS_VARIABLE)
    assert paths.data_root().resolve() in datasets.allowed_import_roots()
