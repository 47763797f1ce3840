"""Training on 4.3 GB of volumes stays under 2 GB resident: tools/bench_memory.py as a slow benchmark.

Run with `python -m pytest -m slow -s tests/training/test_memory_bench.py` (several minutes on 2 cores);
the default run skips it (pytest.ini: -m "not slow").
"""

from __future__ import annotations

import importlib.util

import pytest

from engine import paths

PEAK_RSS_LIMIT_GB = 2.0


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_memory", paths.REPO_ROOT / "tools" / "bench_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_one_epoch_on_4_gb_of_volumes_peaks_under_2_gb_resident(tmp_path, monkeypatch):
    # The benchmark points CONV3D_LAB_DATA at its scratch folder; keep that out of other tests.
    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "unused"))
    results = _bench_module().main(["--gigabytes", "4.3", "--workdir", str(tmp_path / "bench")])
    current = results["current"]
    assert current["dataset_gb"] >= 4.0
    assert current["summary"]["status"] == "finished"
    assert current["peak_rss_gb"] < PEAK_RSS_LIMIT_GB
