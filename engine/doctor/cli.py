"""``python -m engine doctor RUN | --dataset NAME | --store [--rebuild] [--json]``: findings about a run, a dataset
before training, or the run store itself."""

from __future__ import annotations

import argparse
import json

from engine import argtypes
from engine.errors import ConfigError


def add_parser(sub) -> None:
    from engine import argtypes

    p = sub.add_parser("doctor", help="findings about a run (`doctor RUN`), a dataset before training "
                                      "(`doctor --dataset NAME`) or the run store (`doctor --store`)")
    p.add_argument("run", type=argtypes.run_id, nargs="?", help="the run to diagnose")
    p.add_argument("--dataset", metavar="NAME", help="check a dataset before training instead of a run")
    p.add_argument("--store", action="store_true",
                   help="check the run database (PRAGMA integrity_check), runs whose folder is missing, backups")
    p.add_argument("--rebuild", action="store_true",
                   help="with --store: restore the newest backup over a damaged or lost database and recover "
                        "the runs it lacks from their run folders (stop the lab first)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a dataset option, repeatable")
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0, help="the split seed (a run's training.seed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def _print(findings, heading: str) -> None:
    from engine.doctor.findings import Severity, count

    tally = ", ".join(f"{count(findings, severity)} {severity.value}(s)" for severity in Severity)
    following = sum(1 for finding in findings if finding.caused_by is not None)
    print(f"{heading}: {tally}" + (f", {following} consequence(s) of them" if following else ""))
    for finding in findings:
        where = f" (epoch {finding.epoch})" if finding.epoch is not None else ""
        if finding.caused_by is not None:  # indented under its root cause, which comes right before it
            print(f"  <- consequence of {finding.caused_by}: {finding.severity.value} {finding.id}{where}: "
                  f"{finding.title}")
        else:
            print(f"{finding.severity.value.upper():<8} {finding.id}{where}: {finding.title}")
        print(f"{'':<9}-> {finding.suggestion}")
        scalars = {k: v for k, v in finding.evidence.items() if isinstance(v, (int, float, str, bool)) and v != ""}
        if scalars:
            print(f"{'':<9}evidence: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in scalars.items()))


def _check_store(args: argparse.Namespace) -> int:
    from engine.store import check

    if args.rebuild:
        rebuilt = check.rebuild()
        if args.json:
            print(json.dumps(rebuilt.to_dict()))
        else:
            print("\n".join(check.rebuild_lines(rebuilt)))
        return 0
    result = check.check_store()
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print("\n".join(check.report_lines(result)))
    return 0 if result.healthy else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine import doctor

    if args.store:
        return _check_store(args)
    if args.rebuild:
        raise ConfigError(["--rebuild goes with --store: `python -m engine doctor --store --rebuild`."])
    if args.dataset:
        findings = doctor.check_dataset(
            args.dataset, argtypes.dataset_options(args.option), val_fraction=args.val_fraction,
            test_fraction=args.test_fraction, seed=args.seed,
        )
        heading = f"dataset {args.dataset}"
    elif args.run is not None:
        from engine.store import open_store

        store = open_store()
        run = store.get_run(args.run)
        findings = doctor.diagnose(store, args.run)
        heading = f"run {run.id} '{run.name}' ({run.status.label}, {run.epochs_done} epochs)"
    else:
        raise ConfigError(["Name a run (`doctor RUN`), a dataset (`doctor --dataset NAME`) or the store "
                           "(`doctor --store`)."])
    if args.json:
        print(json.dumps({"subject": heading, "findings": [f.to_dict() for f in findings]}, default=float))
    else:
        _print(findings, heading)
    return 0
