"""``python -m engine show RUN --json | head -1``: a reader that goes away early is no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.config import RunConfig
from engine.store import open_store
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("argv", [("show", "1", "--json"), ("runs",), ("runs", "--json")])
def test_a_closed_pipe_ends_the_command_quietly(lab_home, argv):
    store = open_store()
    for _ in range(3):
        store.create_run(RunConfig())
    process = subprocess.Popen([sys.executable, "-m", "engine", *argv], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the command writes anything (as `head` after a line)
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert process.returncode == 141  # 128 + SIGPIPE, as a shell reports a command cut off by `head`


def test_head_reads_the_first_line(lab_home):
    open_store().create_run(RunConfig(name="piped"))
    done = subprocess.run(f"{sys.executable} -m engine show 1 --json | head -1", shell=True, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert '"name": "piped"' in done.stdout and "Traceback" not in done.stderr, done.stderr
