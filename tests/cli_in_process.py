"""Running ``python -m engine`` in the test process (fast: no interpreter or TensorFlow start-up)."""

from __future__ import annotations


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
