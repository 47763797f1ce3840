"""Run folders on an fsspec root (engine/store/artefacts.py): publish, fetch, staleness, deletion, errors.

Two workspaces stand for two machines: ``writer`` and ``reader`` homes share nothing but the root, a
``memory://`` or ``file://`` URL. Inner-loop tests: no TensorFlow, no processes.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest

from engine import datasets, paths
from engine.errors import StoreError
from engine.store import artefacts

_COUNTER = itertools.count()


@pytest.fixture(params=["memory", "file"])
def root(request, tmp_path, monkeypatch) -> str:
    """A fresh artefact root of each kind, set as CONV3D_LAB_ARTIFACTS; the workspace is tmp_path/writer."""
    if request.param == "memory":
        url = f"memory://artefacts-test-{os.getpid()}-{next(_COUNTER)}"
        request.addfinalizer(lambda: fsspec.filesystem("memory").rm(url.split("://")[1], recursive=True)
                             if fsspec.filesystem("memory").exists(url.split("://")[1]) else None)
    else:
        url = (tmp_path / "shared").as_uri()
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, url)
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "writer"))
    return url


def _on(monkeypatch, home: Path) -> None:
    monkeypatch.setenv("CONV3D_LAB_HOME", str(home))


def _write_run(run_id: int) -> Path:
    folder = paths.run_dir(run_id)
    (folder / "best.keras").write_bytes(b"model" * 100)
    (folder / "splits.json").write_text('{"train": [0, 1]}')
    (folder / "saliency.npz").write_bytes(b"maps")
    (folder / "heartbeat").write_text("123")  # host-local: never published
    return folder


def _touch_later(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    later = time.time_ns() + 5_000_000_000
    os.utime(path, ns=(later, later))  # a clearly newer time, whatever the file system's resolution


def test_a_published_run_is_fetched_by_another_workspace(root, tmp_path, monkeypatch):
    _write_run(7)
    sent = artefacts.publish_run(7)
    assert sent is not None and sent.files == 3 and sent.bytes == 500 + 17 + 4

    _on(monkeypatch, tmp_path / "reader")
    folder = artefacts.run_folder(7)
    assert folder == tmp_path / "reader" / "run-00007"
    assert (folder / "best.keras").read_bytes() == b"model" * 100
    assert (folder / "saliency.npz").read_bytes() == b"maps"
    assert not (folder / "heartbeat").exists()
    # Up to date: the next read compares the manifest only and fetches nothing.
    assert artefacts.fetch_folder("runs/run-00007", folder).files == 0


def test_a_newer_publish_is_fetched_and_a_removed_file_goes(root, tmp_path, monkeypatch):
    writer = _write_run(3)
    artefacts.publish_run(3)
    _on(monkeypatch, tmp_path / "reader")
    reader = artefacts.run_folder(3)

    _on(monkeypatch, tmp_path / "writer")
    _touch_later(writer / "best.keras", b"better model")
    (writer / "saliency.npz").unlink()
    sent = artefacts.publish_run(3)
    assert sent.files == 1  # only the changed checkpoint travels

    _on(monkeypatch, tmp_path / "reader")
    got = artefacts.fetch_folder("runs/run-00003", reader)
    assert got.files == 1 and (reader / "best.keras").read_bytes() == b"better model"
    assert not (reader / "saliency.npz").exists()
    assert (reader / "splits.json").exists()


def test_a_stale_working_copy_never_takes_newer_files_out_of_the_root(root, tmp_path, monkeypatch):
    writer = _write_run(4)
    artefacts.publish_run(4)
    _on(monkeypatch, tmp_path / "reader")
    reader = artefacts.run_folder(4)  # fetched at "epoch 1"

    _on(monkeypatch, tmp_path / "writer")
    _touch_later(writer / "best.keras", b"epoch 5 model")
    (writer / "predictions.npz").write_bytes(b"new file")
    artefacts.publish_run(4)

    _on(monkeypatch, tmp_path / "reader")  # the dashboard rewrites one file of its old copy and publishes
    _touch_later(reader / "run.json", b"{}")
    artefacts.publish_run(4)

    _on(monkeypatch, tmp_path / "third")
    third = artefacts.run_folder(4)
    assert (third / "best.keras").read_bytes() == b"epoch 5 model"
    assert (third / "predictions.npz").read_bytes() == b"new file"
    assert (third / "run.json").read_bytes() == b"{}"


def test_a_run_never_published_is_not_brought_back_as_an_empty_folder(root, tmp_path, monkeypatch):
    _on(monkeypatch, tmp_path / "reader")
    folder = artefacts.run_folder(12)
    assert not folder.exists()


def test_deleting_a_run_removes_its_copy_on_the_root(root, tmp_path, monkeypatch):
    _write_run(5)
    artefacts.publish_run(5)
    artefacts.delete_run(5)
    _on(monkeypatch, tmp_path / "reader")
    assert not artefacts.run_folder(5).exists()
    filesystem, path = fsspec.core.url_to_fs(root)
    assert not filesystem.exists(f"{path.rstrip('/')}/runs/run-00005")


def test_without_the_setting_nothing_is_published_or_fetched(tmp_path, monkeypatch):
    monkeypatch.delenv(artefacts.ARTIFACTS_ENV, raising=False)
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "home"))
    _write_run(1)
    assert artefacts.publish_run(1) is None
    assert artefacts.run_folder(1) == paths.run_dir(1, create=False)
    artefacts.delete_run(1)  # nothing to do, no error
    assert not (paths.run_dir(1, create=False) / artefacts.LOCAL_RECORD).exists()


@pytest.mark.parametrize("url, words", [
    ("nosuchprotocol://bucket/lab", "is not a usable fsspec URL"),
    ("s3x://bucket", "is not a usable fsspec URL"),
])
def test_a_bad_url_is_one_sentence_naming_the_setting(url, words, tmp_path, monkeypatch):
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, url)
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "home"))
    with pytest.raises(StoreError, match=words) as caught:
        artefacts.run_folder(1)
    assert artefacts.ARTIFACTS_ENV in str(caught.value)


def test_an_unwritable_root_is_one_sentence_naming_the_setting(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, (blocker / "lab").as_uri())
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "home"))
    _write_run(2)
    with pytest.raises(StoreError, match="Could not publish runs/run-00002 to the artefact root CONV3D_LAB_ARTIFACTS"):
        artefacts.publish_run(2)


def _npz_source(path: Path) -> Path:
    """A MedMNIST-style NPZ of 8^3 volumes, two classes, in train/val/test."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.random((count, 8, 8, 8), dtype=np.float32)
        arrays[f"{split}_labels"] = (np.arange(count) % 2).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


def test_an_imported_dataset_is_listed_and_read_on_another_machine_and_deleted_everywhere(root, tmp_path, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "writer-data"))
    datasets.import_dataset(_npz_source(tmp_path / "tiny.npz"), "shared_tiny")
    written = datasets.load_dataset("shared_tiny")

    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "reader-data"))
    assert "shared_tiny" in datasets.dataset_names()
    read = datasets.load_dataset("shared_tiny")
    np.testing.assert_array_equal(np.asarray(read.x), np.asarray(written.x))
    np.testing.assert_array_equal(read.y, written.y)
    assert (tmp_path / "reader-data" / "imports" / "shared_tiny").is_dir()
    assert not list((tmp_path / "reader-data" / "imports").glob(".fetching-*"))  # staged, then renamed

    datasets.delete_imported("shared_tiny")
    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "third-data"))
    assert "shared_tiny" not in datasets.dataset_names()
