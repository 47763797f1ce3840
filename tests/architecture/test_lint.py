"""ruff's lint rules (pyproject.toml) hold for the whole tree, so a pytest run catches what CI's lint step would.

mypy runs in CI only (.ci/run): a cold run takes a minute, too long for the inner loop.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.architecture.test_code_shape import REPO_ROOT


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (requirements-dev.txt)")
def test_ruff_check_passes():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
