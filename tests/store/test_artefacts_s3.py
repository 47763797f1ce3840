"""Run folders on an S3-compatible root: a moto server on loopback, reached through s3fs as a
deployment reaches MinIO or S3 (``CONV3D_LAB_ARTIFACTS=s3://bucket/lab`` plus ``AWS_ENDPOINT_URL``).

Skipped with a reason without moto[server] or s3fs (requirements-cluster.txt). Worker tier
(tests/tiers.py): it starts a server.
"""

from __future__ import annotations

import socket

import pytest

from engine import paths
from engine.errors import StoreError
from engine.store import artefacts

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed (requirements-cluster.txt)")
pytest.importorskip("s3fs", reason="s3fs is not installed (requirements-cluster.txt)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint, tmp_path, monkeypatch):
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s3fs.S3FileSystem.clear_instance_cache()
    s3 = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    if not s3.exists("lab-bucket"):
        s3.mkdir("lab-bucket")
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, "s3://lab-bucket/lab")
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "writer"))
    yield "s3://lab-bucket/lab"
    s3fs.S3FileSystem.clear_instance_cache()


def test_a_run_folder_travels_through_an_s3_server(s3_root, tmp_path, monkeypatch):
    folder = paths.run_dir(9)
    (folder / "best.keras").write_bytes(b"weights" * 1000)
    (folder / "saliency.npz").write_bytes(b"maps")
    sent = artefacts.publish_run(9)
    assert sent is not None and sent.files == 2

    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "reader"))
    fetched = artefacts.run_folder(9)
    assert (fetched / "best.keras").read_bytes() == b"weights" * 1000
    assert artefacts.fetch_folder("runs/run-00009", fetched).files == 0  # the manifest says it is current

    artefacts.delete_run(9)
    monkeypatch.setenv("CONV3D_LAB_HOME", str(tmp_path / "third"))
    assert not artefacts.run_folder(9).exists()


def test_a_missing_bucket_is_one_sentence_naming_the_setting(s3_root, tmp_path, monkeypatch):
    monkeypatch.setenv(artefacts.ARTIFACTS_ENV, "s3://no-such-bucket/lab")
    (paths.run_dir(3) / "best.keras").write_bytes(b"weights")
    with pytest.raises(StoreError, match="artefact root CONV3D_LAB_ARTIFACTS='s3://no-such-bucket/lab'"):
        artefacts.publish_run(3)
