"""``python -m engine evaluate RUN [--epoch N | --best] [--split val|test] [--threshold X] [--json]``.

engine/cli.py wires it in with ``add_parser(sub)``; ``cmd_evaluate`` returns
the exit status and raises ``LabError`` subclasses for user mistakes (the main
CLI prints those as one sentence and exits 2).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from engine import argtypes

if TYPE_CHECKING:
    from engine.evaluation.report import Evaluation

# engine.evaluation.report (scikit-learn, pandas) is imported only when the command runs.
SPLITS = ("val", "test")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to the main parser's subparsers."""
    parser = subparsers.add_parser(
        "evaluate", help="confusion matrix, per-class table and AUCs of a run's stored predictions"
    )
    parser.add_argument("run", type=argtypes.run_id, metavar="RUN", nargs="?", help="the run id (`runs` lists them)")
    parser.add_argument("--ensemble", metavar="GROUP",
                        help="a fold / seed group: each run's test metrics and those of their mean probabilities")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--epoch", type=argtypes.epoch, metavar="N", help="the epoch to evaluate (default: the latest stored)")
    which.add_argument("--best", action="store_true", help="the best epoch (the test split always uses it)")
    parser.add_argument("--split", choices=SPLITS, default="val", help="val (every epoch) or test (best weights)")
    parser.add_argument("--threshold", type=float, metavar="X", help="two-class runs: predict the positive class when P(positive class) >= X")
    parser.add_argument("--json", action="store_true", help="print one JSON object (with curve points)")
    parser.set_defaults(func=cmd_evaluate)
    return parser


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.errors import LabError
    from engine.evaluation.report import evaluate_run
    from engine.store import open_store

    if (args.run is None) == (args.ensemble is None):
        raise LabError("Give a run id (evaluate RUN) or a group (evaluate --ensemble GROUP), one of the two.")
    if args.ensemble is not None:
        from engine.evaluation import ensemble

        result = ensemble.evaluate_ensemble(open_store(), args.ensemble, threshold=args.threshold)
        print(json.dumps(result.to_dict()) if args.json else ensemble.format_text(result))
        return 0

    evaluation = evaluate_run(
        open_store(), args.run, args.split, args.epoch, best=args.best, threshold=args.threshold
    )
    if args.json:
        print(json.dumps(evaluation.to_dict(with_curves=True)))
    else:
        print(format_text(evaluation))
    return 0


def metrics_reason(row: dict) -> str:
    return next(iter(row["undefined"].values()))


def _number(value, reason: str | None = None) -> str:
    from engine.evaluation.metrics import shown

    return shown(value, 4, reason)


def format_text(evaluation: "Evaluation") -> str:
    """The human-readable report: header, confusion matrix, per-class table, AUCs."""
    names = evaluation.class_names
    width = max(9, *(len(name) for name in names)) + 1
    split = "validation" if evaluation.split == "val" else evaluation.split
    positive = evaluation.positive_class
    lines = [
        f"run {evaluation.run_id}, {split} split, epoch {evaluation.epoch}: {len(evaluation.labels)} samples"
        + (f", threshold {evaluation.threshold:g} on P({positive})" if evaluation.threshold is not None else ""),
        f"  accuracy {evaluation.accuracy:.4f}, balanced accuracy "
        f"{_number(evaluation.balanced_accuracy, 'no samples' if evaluation.missing_classes else None)}, "
        f"mean loss {evaluation.mean_loss:.4f}" if evaluation.mean_loss is not None else "  no samples",
    ]
    if positive is not None:
        lines.append(f"  {evaluation.positive_class_note}")
        sensitivity, specificity = evaluation.sensitivity, evaluation.specificity
        reason = "no samples"
        lines.append(f"  sensitivity ({positive}) {_number(sensitivity, reason)}, specificity ({positive}) "
                     f"{_number(specificity, reason)}")
    lines += [
        "",
        "confusion matrix (rows: true, columns: predicted)",
        " " * width + "".join(f"{name:>{width}}" for name in names),
    ]
    for name, row, fractions in zip(names, evaluation.counts, evaluation.normalized):
        cells = "".join(f"{f'{count} ({fraction:.0%})':>{width}}" for count, fraction in zip(row, fractions))
        lines.append(f"{name:<{width}}{cells}")
    lines += ["", f"{'class':<{width}}{'precision':>10}{'recall':>10}{'specif.':>10}{'f1':>10}{'support':>9}"]
    for row in evaluation.per_class:
        cell = {name: _number(row[name]) if name not in row.get("undefined", {}) else "undefined"
                for name in ("precision", "recall", "specificity", "f1")}
        lines.append(
            f"{row['class']:<{width}}{cell['precision']:>10}{cell['recall']:>10}"
            f"{cell['specificity']:>10}{cell['f1']:>10}{row['support']:>9}"
        )
    for row in evaluation.per_class:
        if row.get("undefined"):  # no sample of the class: its recall and F1 do not exist
            what = " and ".join(row["undefined"])
            whose = "this class" if "recall" in row["undefined"] else "another class"
            lines.append(f"  {row['class']}: {what} {_number(None, metrics_reason(row))}: the split holds no sample "
                         f"of {whose}")
    lines.append("")
    if evaluation.roc:
        aucs = ", ".join(f"{curve.class_name} {curve.auc:.4f}" for curve in evaluation.roc)
        label = f"ROC AUC (positive class {positive})" if evaluation.is_binary else "ROC AUC (one-vs-rest)"
        lines.append(f"{label}: {aucs}" + ("" if evaluation.is_binary else f"; macro {evaluation.roc_auc:.4f}"))
        aps = ", ".join(f"{curve.class_name} {curve.auc:.4f}" for curve in evaluation.pr)
        lines.append(f"PR AUC (average precision): {aps}")
    else:
        lines.append("ROC/PR AUC: undefined (the split holds one class only)")
    if evaluation.youden is not None:
        y = evaluation.youden
        lines.append(
            f"Youden's J best threshold {y.threshold:.4f} on P({positive}): J {y.j:.4f}, sensitivity {y.sensitivity:.4f}, "
            f"specificity {y.specificity:.4f}"
        )
    return "\n".join(lines)
