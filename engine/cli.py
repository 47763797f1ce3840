"""The command line: ``python -m engine COMMAND ...``.

A user mistake exits with status 2 and one readable sentence on stderr, never
a traceback. A run that fails exits 1 after its failure is recorded.

Where a command lives: in ``engine/<package>/cli.py`` of the package whose public functions do its work
(``evaluate`` in engine/evaluation/cli.py, ``sweep`` in engine/sweeps/cli.py, ``train``, ``launch`` and
``stop`` in engine/jobs/cli.py, ``share`` in engine/hosting/cli.py). That module adds the command's parser (``add_<command>(sub)``, or ``add_parsers(sub)``
for several), parses and prints; the work itself stays in the package. A command imports its package's
heavy modules (TensorFlow, scikit-learn, pandas) inside the command function, so ``--help`` stays fast.
The run-configuration flags (``--dataset``, ``--lr``, ...) are defined once, in engine/training/cli.py
(``add_config_options``, ``config_from_args``), for every command that takes a run configuration.
This module only assembles the parser, in the order ``--help`` lists the commands, and dispatches.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from engine.errors import LabError
from engine.training.cli import config_from_args

__all__ = ["build_parser", "config_from_args", "main"]  # config_from_args: the flags -> RunConfig, for scripts


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: a usage mistake is one ``error: ...`` line and exit 2.

    (argparse's own ``error`` prints the whole usage block first; the sub-command
    parsers are made with this class too, as ``add_subparsers`` uses the parent's.)
    """

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(message.split())}; `{self.prog} --help` lists the options.\n")


def build_parser() -> argparse.ArgumentParser:
    from engine.bench import cli as bench_cli
    from engine.compare import cli as compare_cli
    from engine.datasets import cli as datasets_cli
    from engine.doctor import cli as doctor_cli
    from engine.evaluation import cli as evaluation_cli
    from engine.hosting import cli as hosting_cli
    from engine.inference import cli as inference_cli
    from engine.jobs import cli as jobs_cli
    from engine.models import cli as models_cli
    from engine.planning import cli as planning_cli
    from engine.remedies import cli as remedies_cli
    from engine.sweeps import cli as sweeps_cli
    from engine.training import cli as training_cli

    parser = _Parser(prog="python -m engine", description="Conv3D Lab engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (  # the order of `python -m engine --help`
        datasets_cli.add_datasets,
        models_cli.add_archs,
        models_cli.add_describe,
        jobs_cli.add_train,
        jobs_cli.add_launch,
        sweeps_cli.add_group,
        training_cli.add_lr_find,
        training_cli.add_augment_preview,
        jobs_cli.add_runs,
        jobs_cli.add_show,
        jobs_cli.add_stop_resume_worker,
        sweeps_cli.add_sweep,
        jobs_cli.add_reconcile,
        evaluation_cli.add_parser,
        datasets_cli.add_import,
        compare_cli.add_parsers,
        bench_cli.add_parsers,
        hosting_cli.add_parser,
        doctor_cli.add_parser,
        remedies_cli.add_parser,
        inference_cli.add_parsers,
        planning_cli.add_parser,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that has gone (`| head -1`) shows here, inside the handler below
        return code
    except BrokenPipeError:
        # The rest of the output is not wanted. Point stdout at /dev/null, so the interpreter's own
        # flush at exit does not fail again (the recipe of Python's signal module documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

