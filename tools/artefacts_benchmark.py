"""What shared storage costs: publish and fetch one tiny run's folder (CONV3D_LAB_ARTIFACTS).

    python tools/artefacts_benchmark.py [--epochs 2] [--root URL]

Trains one tiny run in the foreground (``python -m engine train``: shapes3d, 48 volumes of 12^3, the
tutorial net at a quarter width) in a scratch workspace with the artefact root unset, then times a
first publish of its folder to each root (``file://`` in the scratch folder, ``memory://``, and an S3
server from moto on loopback when moto[server] and s3fs are installed; ``--root`` adds another), a
second publish with nothing changed (the per-checkpoint cost of an idle folder), a fetch into an empty
workspace (the first Inspect on another machine) and a fetch when up to date (every later Inspect).
Prints one line per root and step: files, MB, seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from engine import paths  # noqa: E402
from engine.store import artefacts  # noqa: E402


def _train(workspace: Path, epochs: int) -> int:
    env = {**os.environ, "CONV3D_LAB_HOME": str(workspace / "trainer"), "CONV3D_LAB_DATA": str(workspace / "data")}
    env.pop("CONV3D_LAB_DB", None)
    env.pop(artefacts.ARTIFACTS_ENV, None)
    subprocess.run(
        [sys.executable, "-m", "engine", "train", "--dataset", "shapes3d", "--option", "num_samples=48",
         "--arch", "tutorial3d", "--width", "0.25", "--epochs", str(epochs), "--batch-size", "8"],
        cwd=REPO_ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    os.environ["CONV3D_LAB_HOME"] = str(workspace / "trainer")
    return max(paths.run_folders())


def _s3_root(stack: list) -> str | None:
    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs each request otherwise
    server.start()
    stack.append(server)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint)
    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir("bench-bucket")
    return "s3://bench-bucket/lab"


def _line(root: str, step: str, transfer: artefacts.Transfer | None) -> None:
    if transfer is None:
        print(f"{root:<34} {step:<26} nothing")
        return
    print(f"{root:<34} {step:<26} {transfer.files:3d} files {transfer.bytes / 1e6:8.3f} MB {transfer.seconds:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--root", action="append", default=[], help="another fsspec root to time (repeatable)")
    args = parser.parse_args()
    servers: list = []
    with tempfile.TemporaryDirectory(prefix="artefacts-bench-") as scratch:
        workspace = Path(scratch)
        run_id = _train(workspace, args.epochs)
        trainer = workspace / "trainer"
        files = [path for path in paths.run_dir(run_id, create=False).rglob("*") if path.is_file()]
        print(f"run {run_id}: {len(files)} files, {sum(path.stat().st_size for path in files) / 1e6:.3f} MB "
              f"({args.epochs} epochs, shapes3d 48 x 12^3, tutorial3d x0.25)")
        roots = [(workspace / "shared").as_uri(), f"memory://artefacts-bench-{os.getpid()}", *args.root]
        s3 = _s3_root(servers)
        roots += [s3] if s3 else []
        if not s3:
            print("s3 (moto) not timed: moto[server] or s3fs is not installed (requirements-cluster.txt)")
        for number, root in enumerate(roots):
            os.environ[artefacts.ARTIFACTS_ENV] = root
            for record in trainer.rglob(artefacts.LOCAL_RECORD):
                record.unlink()  # each root starts from a never-published folder
            os.environ["CONV3D_LAB_HOME"] = str(trainer)
            _line(root, "publish (first)", artefacts.publish_run(run_id))
            _line(root, "publish (nothing changed)", artefacts.publish_run(run_id))
            os.environ["CONV3D_LAB_HOME"] = str(workspace / f"reader-{number}")
            folder = paths.run_dir(run_id, create=False)
            key = f"{artefacts.RUNS_PREFIX}/{folder.name}"
            _line(root, "fetch (empty workspace)", artefacts.fetch_folder(key, folder))
            _line(root, "fetch (up to date)", artefacts.fetch_folder(key, folder))
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main()
