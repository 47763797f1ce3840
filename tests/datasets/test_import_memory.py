"""No input under 10 MB makes an import use more than 500 MB (issue 21).

Each hostile file is imported by a real ``python -m engine import`` process; a driver process
starts them one after another and reads the children's peak resident memory with
``resource.getrusage(RUSAGE_CHILDREN)`` (the largest child so far, in KiB on Linux). The driver
runs in its own process so that no earlier child of the test session counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from engine import paths
from tests.datasets import hostile

LIMIT_BYTES = 500 * 1024**2
INPUT_LIMIT_BYTES = 10 * 1024**2

DRIVER = textwrap.dedent("""
    import json, resource, subprocess, sys
    peaks = []
    for argv in json.loads(sys.argv[1]):
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        peaks.append({"argv": argv, "code": done.returncode, "peak": peak, "stderr": done.stderr[-400:]})
    print(json.dumps(peaks))
""")


def _peaks(commands: list[list[str]]) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], cwd=paths.REPO_ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def test_the_meter_sees_a_child_that_uses_600_mb(tmp_path):
    """The measurement can fail: a child that really holds 600 MB is seen above the limit."""
    (peak,) = _peaks([["-c", "import numpy; a = numpy.ones(600 * 1024**2, numpy.uint8); print(a.sum())"]])
    assert peak["code"] == 0 and peak["peak"] > LIMIT_BYTES


def test_no_small_hostile_input_makes_an_import_use_more_than_500_mb(lab_home, tmp_path):
    for label in ("a", "b"):
        hostile.nifti_header_only(tmp_path / "nii" / label / "huge.nii")
    hostile.npz_bomb(tmp_path / "bomb.npz")  # 2 GiB of zeros in about 2 MB
    hostile.npz_claiming(tmp_path / "claims.npz")  # a header that claims 100 GB
    hostile.hdf5_declared(tmp_path / "declared.h5")
    # A real small NPZ as the reference: an ordinary import's peak, for the printed figures.
    np.savez(tmp_path / "ok.npz", x=np.random.default_rng(0).random((8, 8, 8, 8)), y=np.arange(8) % 2)
    sources = {
        "nifti 1200^3 header": ([str(tmp_path / "nii")], ()),
        "npz bomb, dry run": ([str(tmp_path / "bomb.npz")], ("--dry-run",)),
        "npz bomb": ([str(tmp_path / "bomb.npz")], ()),
        "npz claiming 100 GB": ([str(tmp_path / "claims.npz")], ()),
        "hdf5 declared 1200^3 rows": ([str(tmp_path / "declared.h5")], ("--x-key", "x", "--y-key", "y")),
        "ordinary npz": ([str(tmp_path / "ok.npz")], ()),
    }
    commands = []
    for index, (name, (source, extra)) in enumerate(sources.items()):
        assert _size(Path(source[0])) < INPUT_LIMIT_BYTES, name
        commands.append(["-m", "engine", "import", *source, "--name", f"m{index}", *extra])
    peaks = _peaks(commands)
    for name, peak in zip(sources, peaks):
        print(f"{name}: exit {peak['code']}, peak RSS so far {peak['peak'] / 1024**2:.0f} MB")
        expected = 0 if name == "ordinary npz" else 2
        assert peak["code"] == expected and "Traceback" not in peak["stderr"], (name, peak)
    assert max(peak["peak"] for peak in peaks) < LIMIT_BYTES, peaks
