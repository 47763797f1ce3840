"""Commands for comparing and curating runs: ``compare``, ``tag``, ``note``, ``archive``, ``delete``, ``bench``.

``engine.cli.build_parser`` adds them with ``add_parsers``. A user mistake
raises a ``LabError`` (exit status 2, one sentence on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import pandas as pd



def _store():
    from engine.store import open_store

    return open_store()


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and missing numbers become null, NumPy numbers plain numbers."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cmd_compare(args) -> int:
    from engine import compare

    if len(args.runs) < 2:
        raise compare.CompareError("Name at least two runs to compare, e.g. `python -m engine compare 3 4`.")
    comparison = compare.load(_store(), args.runs)
    metric = args.metric or compare.default_result_metric(comparison.histories, comparison.runs)
    if metric is None:
        raise compare.CompareError("None of these runs has recorded an epoch yet, so there is nothing to compare.")
    if metric not in compare.metric_names(comparison.histories):
        raise compare.CompareError(
            f"No run here recorded {metric!r}; choose one of {', '.join(compare.metric_names(comparison.histories))}."
        )
    summary = compare.summary_frame(comparison, metric, args.at, args.group_by)
    config, differing = compare.config_table(comparison.runs, only_differences=True)
    if args.json:
        print(json.dumps({
            "result_metric": metric,
            "at": args.at,
            "group_by": args.group_by,
            "summary": [{key: _plain(value) for key, value in row.items()} for row in summary.to_dict("records")],
            "config_differences": {
                name: {str(run.id): _plain(compare.field_value(run, name)) for run in comparison.runs}
                for name in differing
            },
        }))
        return 0
    print(f"{metric} at each run's {args.at} epoch" + (f", grouped by {args.group_by}" if args.group_by else "")
          + " (groups: mean, with the sample std and the result's 95% interval in the next columns)"
          * bool(args.group_by))
    shown = summary.drop(columns=["run id"]).set_index("run")
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.float_format", "{:.4g}".format):
        print(shown.to_string(na_rep="-"))
        print()
        if differing:
            print("Config differences:")
            print(config.to_string())
        else:
            print("The runs' configs are the same.")
    return 0


def cmd_tag(args) -> int:
    from engine.compare import curation

    store = _store()
    if args.remove:
        tags = curation.remove_tags(store, args.run, args.tags)
    else:
        tags = curation.add_tags(store, args.run, args.tags)
    print(f"run {args.run} tags: {', '.join(tags) if tags else '(none)'}")
    return 0


def cmd_note(args) -> int:
    from engine.compare import curation

    notes = curation.set_notes(_store(), args.run, args.text)
    print(f"run {args.run}: notes {'saved' if notes else 'cleared'}")
    return 0


def cmd_archive(args) -> int:
    from engine.compare import curation

    curation.set_archived(_store(), args.run, not args.undo)
    print(f"run {args.run}: {'back in the run lists' if args.undo else 'archived (`runs --archived` lists it)'}")
    return 0


def cmd_delete(args) -> int:
    from engine import jobs
    from engine.compare import curation

    store = _store()
    jobs.reconcile(store)  # a run whose worker died is interrupted, and can then be deleted
    run = store.get_run(args.run)
    curation.check_deletable(run)
    if not args.yes:
        if not sys.stdin.isatty():
            raise curation.RunEditError(
                f"Deleting run #{run.id} removes its metrics, predictions and folder for good; "
                "add --yes to confirm when not at a terminal."
            )
        answer = input(f"Delete run #{run.id} '{run.name}' with its metrics, predictions and folder? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 1
    curation.delete_run(store, run.id)
    print(f"run {run.id} deleted")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="summary and config differences of two or more runs")
    p.add_argument("runs", type=int, nargs="+", metavar="RUN")
    p.add_argument("--metric", help="the result metric (default: val_accuracy when recorded)")
    p.add_argument("--at", choices=("best", "last"), default="best",
                   help="read the result at each run's best epoch (by its monitored metric) or its last")
    p.add_argument("--group-by", metavar="FIELD", help="a config field, e.g. training.learning_rate: mean ± std")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("tag", help="add tags to a run (--remove takes them off)")
    p.add_argument("run", type=int)
    p.add_argument("tags", nargs="+", metavar="TAG")
    p.add_argument("--remove", action="store_true")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("note", help="set a run's notes ('' clears them)")
    p.add_argument("run", type=int)
    p.add_argument("text")
    p.set_defaults(func=cmd_note)

    p = sub.add_parser("archive", help="hide a run from run lists (--undo brings it back)")
    p.add_argument("run", type=int)
    p.add_argument("--undo", action="store_true")
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("delete", help="delete an ended run: its rows and its folder")
    p.add_argument("run", type=int)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_delete)


__all__ = ["add_parsers"]
