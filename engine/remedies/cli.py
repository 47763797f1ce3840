"""``python -m engine fix RUN FINDING_ID [--remedy NAME] [--seeds N | --folds K] [--json]``: a finding's remedy
launched as a paired comparison; ``fix --report GROUP`` its verdict; ``fix RUN`` the remedies of a run's
findings; ``fix --list`` the fixes launched."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from engine.errors import ConfigError

WAIT_POLL_S = 2.0


def add_parser(sub) -> None:
    from engine import argtypes

    p = sub.add_parser("fix", help="apply a doctor finding's remedy and verify it: the original and the fixed "
                                   "config as pairs over the same seeds or folds (`fix RUN FINDING_ID`), "
                                   "and their difference with its interval (`fix --report GROUP`)")
    p.add_argument("run", type=argtypes.run_id, nargs="?", help="the run whose finding to fix")
    p.add_argument("finding", nargs="?", metavar="FINDING_ID",
                   help="the finding's id (`doctor RUN` shows them), e.g. overfitting; none lists the remedies")
    p.add_argument("--remedy", metavar="NAME", help="one of the finding's remedies (default: its first)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--seeds", type=int, metavar="N", help="pairs over N seeds (default 3)")
    how.add_argument("--folds", type=int, metavar="K", help="pairs over the K folds of a cross-validation")
    p.add_argument("--report", metavar="GROUP", help="the verdict of a fix launched before (its group, fix-...)")
    p.add_argument("--metric", help="with --report: the result metric (default test_accuracy, else val_accuracy)")
    p.add_argument("--list", action="store_true", help="the fixes launched, newest first")
    p.add_argument("--wait", action="store_true", help="after launching, wait for every pair, then report")
    p.add_argument("--force", action="store_true", help="skip the memory check")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fix)


def _print_report(report) -> None:
    record = report.record or {}
    if record:
        print(f"{report.group}: run {record.get('run_id')} fixed for '{record['finding']['id']}' by "
              f"{record.get('remedy')} ({record.get('repetition')}, {len(report.pairs)} pair(s))")
        for change in record.get("changes", []):
            print(f"  {change['field']}: {change['old']} -> {change['new']}")
    else:
        print(f"{report.group}: {len(report.pairs)} pair(s) (the fix record is missing; paired by seed and fold)")
    print(f"{'pair':<10}{'original':>10}{'fixed':>10}{'difference':>12}  runs")
    for row in report.pairs:
        cells = [f"{row[name]:.4f}" if row[name] is not None else "-" for name in ("original", "fixed")]
        diff = f"{row['difference']:+.4f}" if row["difference"] is not None else "-"
        print(f"{row['key']:<10}{cells[0]:>10}{cells[1]:>10}{diff:>12}  #{row['original_run']} / "
              f"#{row['fixed_run']} ({row['status']})")
    if report.original is not None and report.fixed is not None:
        print(f"original {report.metric}: {report.original.describe()}")
        print(f"fixed    {report.metric}: {report.fixed.describe()}")
    print(report.sentence)


def _list_remedies(run_id: int, as_json: bool) -> int:
    from engine import doctor, remedies
    from engine.store import open_store

    rows: list[dict[str, Any]] = []
    for finding in doctor.diagnose(open_store(), run_id):
        rows.append({"finding": finding.id, "severity": finding.severity.value, "title": finding.title,
                     "remedies": [{"id": r.id, "title": r.title} for r in remedies.remedies_for(finding.id)]})
    if as_json:
        print(json.dumps({"run": run_id, "findings": rows}))
        return 0
    for row in rows:
        offer = ", ".join(f"{r['id']} ({r['title']})" for r in row["remedies"]) or "no automatic remedy"
        print(f"{row['severity'].upper():<8} {row['finding']}: {offer}")
    if not rows:
        print(f"Run {run_id}: the doctor found nothing to fix.")
    return 0


def cmd_fix(args: argparse.Namespace) -> int:
    from engine.remedies import pairing

    if args.list:
        records = pairing.list_records(args.run)
        if args.json:
            print(json.dumps(records, default=str))
        for record in [] if args.json else records:
            print(f"{record['group']}: run {record['run_id']} '{record['finding']['id']}' by {record['remedy']}, "
                  f"{len(record['pairs'])} pair(s) over {record['repetition']}")
        return 0
    if args.report:
        report = pairing.fix_report(args.report, metric=args.metric)
        if args.json:
            print(json.dumps(report.to_dict(), default=float))
        else:
            _print_report(report)
        return 0
    if args.run is None:
        raise ConfigError(["Name a run and a finding (`fix RUN FINDING_ID`), a fix group (`fix --report GROUP`) "
                           "or list the fixes (`fix --list`)."])
    if args.finding is None:
        return _list_remedies(args.run, args.json)
    launched = pairing.launch_fix(args.run, args.finding, remedy=args.remedy, seeds=args.seeds, folds=args.folds,
                                  force=args.force)
    if args.wait:
        from engine.runs import ENDED_STATUSES
        from engine.store import open_store

        store = open_store()
        ids = [run_id for pair in launched.pairs for run_id in pair]
        while any(store.get_run(run_id).status not in ENDED_STATUSES for run_id in ids):
            time.sleep(WAIT_POLL_S)
    if args.json:
        payload = launched.to_dict()
        if args.wait:
            payload["report"] = pairing.fix_report(launched.group).to_dict()
        print(json.dumps(payload, default=float))
        return 0
    print(f"{launched.group}: {len(launched.pairs)} pair(s) over {launched.repetition}, remedy "
          f"{launched.prescription.remedy.id} ({launched.prescription.remedy.title.lower()})")
    for change in launched.prescription.changes:
        print(f"  {change.text()}: {change.reason}")
    print("  pairs (original / fixed): " + ", ".join(f"#{a} / #{b}" for a, b in launched.pairs))
    if args.wait:
        _print_report(pairing.fix_report(launched.group))
    else:
        print(f"When they have finished: python -m engine fix --report {launched.group}")
    return 0
