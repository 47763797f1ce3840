"""The pretraining benchmark (tools/transfer_benchmark.py) end to end at its smallest: slow, not in the default run."""

from __future__ import annotations

import importlib.util

import pytest

from engine import paths


@pytest.mark.slow
def test_the_transfer_benchmark_reports_every_arm_against_scratch(lab_home):
    spec = importlib.util.spec_from_file_location("transfer_benchmark", paths.REPO_ROOT / "tools/transfer_benchmark.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines: list[str] = []
    result = bench.run_benchmark(seeds=2, pretrain_digits=80, labelled_digits=80, pretrain_epochs=1, epochs=2,
                                 report=lines.append)
    assert set(result["arms"]) == {"scratch", "pretrained", "pretrained, block 1 frozen"}
    for arm, entry in result["arms"].items():
        assert len(entry["test_accuracy"]) == 2 and all(0 <= v <= 1 for v in entry["test_accuracy"])
        assert ("minus_scratch" in entry) == (arm != "scratch")
    assert lines[0].startswith("pretraining run ") and len(lines) == 1 + 2 * 3 + 3
