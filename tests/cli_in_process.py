"""Running ``python -m engine`` in the test process (fast: no interpreter or TensorFlow start-up)."""

from __future__ import annotations

import contextlib
import io
import subprocess


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``engine.cli.main(argv)``; argparse's own exits (usage errors,
    ``--help``) come through SystemExit and are returned as codes too."""
    from engine import cli

    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_result(*argv: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m engine ARGV`` run in this process, as a ``CompletedProcess`` (returncode, stdout,
    stderr), for tests written against the subprocess: the same assertions, without an interpreter's
    and TensorFlow's start-up. ``timeout`` is accepted for the subprocess helpers' signature; the test's
    own timeout (pytest-timeout) bounds the call instead."""
    from engine import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(arg) for arg in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return subprocess.CompletedProcess(["python", "-m", "engine", *map(str, argv)], code, out.getvalue(), err.getvalue())
