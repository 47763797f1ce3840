"""The test tiers (tests/tiers.py, tests/conftest.py): every listed entry names a test that exists, and
the marks and the slow rule work as docs/testing.md says."""

from __future__ import annotations

import re
import subprocess
import sys

from tests import tiers
from tests.conftest import REPO_ROOT


def test_every_worker_entry_names_an_existing_file_or_test():
    missing = []
    for entry in tiers.WORKER_TESTS:
        path, _, name = entry.partition("::")
        target = REPO_ROOT / path
        if not target.exists():
            missing.append(entry)
        elif name and not re.search(rf"^def {re.escape(name)}\(", target.read_text(), re.MULTILINE):
            missing.append(entry)
    assert missing == [], "tests/tiers.py lists tests that do not exist: " + ", ".join(missing)


def test_entries_match_files_tests_and_parametrised_tests_only():
    assert tiers.is_worker_test("tests/jobs/test_queue.py::test_anything")
    assert tiers.is_worker_test("tests/hosting/test_proxy.py::test_x")
    assert tiers.is_worker_test("tests/evaluation/test_saliency.py::test_every_preset_yields_maps[vgg3d]")
    assert not tiers.is_worker_test("tests/evaluation/test_saliency.py::test_stored_maps_are_small_and_load_without_tensorflow")
    assert not tiers.is_worker_test("tests/jobs/test_queue_more.py::test_x")


def test_the_inner_loop_leaves_out_slow_and_worker_tests():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "not e2e and not worker", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/training/test_memory_bench.py", "tests/jobs/test_queue.py", "tests/test_statistics.py"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/test_statistics.py::") for line in collected), result.stdout
