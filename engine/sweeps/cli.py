"""``python -m engine group GROUP`` and ``python -m engine sweep SPEC.json | status ID | stop ID``: groups of runs.

A group (folds, seeds, a sweep's trials) is summarised per fold at its best epoch with mean ± std and an
interval (engine/sweeps/summary.py); a sweep's progress comes from engine/sweeps/control.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

from engine import statistics
from engine.errors import ConfigError
from engine.runs import RunStatus


def add_group(sub) -> None:
    p = sub.add_parser("group", help="a fold / seed / sweep group: per-fold metrics at the best epoch, mean ± std")
    p.add_argument("group", help="the group id (`runs` shows it), e.g. cv-3fa9c1")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_group)


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="a hyperparameter sweep: `sweep SPEC.json [--wait]`, `sweep status ID`, `sweep stop ID`")
    p.add_argument("target", metavar="SPEC|status|stop", help="a sweep spec JSON file, or status / stop")
    p.add_argument("id", nargs="?", type=int, help="the sweep id (status, stop); none lists the sweeps")
    p.add_argument("--wait", action="store_true", help="return when every trial has ended")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)


def print_group(group: str) -> None:
    """A group's runs at their best epoch and its summary lines (``group``, and ``train`` after several seeds)."""
    from engine.store import open_store
    from engine.sweeps import summary

    result = summary.group_summary(open_store(), group)
    for configuration in result["configurations"]:
        trial = configuration["trial"]
        print(f"group {group}" + (f", trial {trial}" if trial is not None else "") +
              f": {len(configuration['folds'])} run(s)")
        for fold in configuration["folds"]:
            where = f"fold {fold['fold_label']}" if fold["fold_label"] else f"seed {fold['seed']}"
            values = ", ".join(f"{name} {value:.4f}" for name, value in sorted(fold["metrics"].items()))
            print(f"  run {fold['run_id']:>4} {where:<8} {fold['status']:<11} best epoch {fold['best_epoch']}: {values}")
            if fold.get("last_metrics"):  # the training accuracy at the last epoch shows memorisation
                last = ", ".join(f"{name} {fold['last_metrics'][name]:.4f}" for name in summary.LAST_EPOCH_METRICS
                                 if name in fold["last_metrics"])
                print(f"  {'':>4}     {'':<8} {'':<11} last epoch {fold['last_epoch']}: {last}")
        for name, values in configuration["summary"].items():
            estimate = statistics.Estimate(**values)
            interval = f"  ({statistics.CONFIDENCE:.0%} CI {estimate.interval_text()})" if estimate.low is not None else ""
            print(f"  {name:<16} {estimate.mean_std_text()}{interval}")


def cmd_group(args) -> int:
    from engine import jobs
    from engine.store import open_store
    from engine.sweeps import summary

    store = open_store()
    jobs.reconcile(store)
    if args.json:
        print(json.dumps(summary.group_summary(store, args.group), default=str))
        return 0
    print_group(args.group)
    return 0


def _sweep_text(report: dict[str, Any]) -> str:
    state = ("stop requested, " if report["stop_requested"] else "") + ("done" if report["done"] else "in progress")
    lines = [
        f"sweep {report['id']} ({report['group']}, {report['method']}, {report['direction']} {report['metric']}): "
        f"{state}; trials {report['trials_done']}/{report['trials_total']} done, {report['trials_running']} running, "
        f"{report['trials_pruned']} {RunStatus.PRUNED.label}, {report['trials_failed']} {RunStatus.FAILED.label}"
    ]
    for trial in report["trials"]:
        params = ", ".join(f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={value}"
                           for path, value in trial["params"].items())
        value = f"{trial['value']:.4f}" if trial["value"] is not None else "-"
        runs = ",".join(f"{run_id}:{status}" for run_id, status in zip(trial["run_ids"], trial["statuses"]))
        lines.append(f"  trial {trial['trial']:>3} {trial['outcome'] or 'open':<8} {value:>7}  {params}  runs {runs}")
    best = report["best"]
    if best is not None:
        estimate = best["estimate"]
        interval = (f" ± {estimate['std']:.4f}, 95% CI {statistics.Estimate(**estimate).interval_text()} over "
                    f"{estimate['n']} folds" if estimate and estimate["std"] is not None else "")
        lines.append(f"best: trial {best['trial']} {report['metric']} {best['value']:.4f}{interval}; params "
                     + json.dumps(best["params"]))
    if report["comparison"]:
        comparison = report["comparison"]
        lines.append(f"best vs runner-up (trial {comparison['runner_up_trial']}): {comparison['text']}")
    return "\n".join(lines)


def cmd_sweep(args) -> int:
    from engine import jobs
    from engine.store import open_store
    from engine.sweeps import control
    from engine.sweeps.spec import SweepSpec

    store = open_store()
    if args.target in ("status", "stop"):
        if args.id is None:
            sweeps = store.list_sweeps()
            if args.json:
                print(json.dumps([{"id": s.id, "name": s.name, "group": s.group, "done": s.finished_at is not None}
                                  for s in sweeps]))
            else:
                for sweep in sweeps:
                    print(f"sweep {sweep.id} {sweep.name or sweep.group}: "
                          f"{'done' if sweep.finished_at else 'in progress'}")
                if not sweeps:
                    print("No sweeps yet; start one with `python -m engine sweep SPEC.json`.")
            return 0
        if args.target == "stop":
            control.stop(args.id, store=store, wait=True)
        sweep_id = args.id
    else:
        try:
            with open(args.target, encoding="utf-8") as handle:
                raw = json.load(handle)
        except OSError as e:
            raise ConfigError([f"Cannot read the sweep spec {args.target!r} ({e.strerror}); check the path."]) from e
        except json.JSONDecodeError as e:
            raise ConfigError([f"The sweep spec {args.target!r} is not valid JSON ({e.msg} at line {e.lineno})."]) from e
        sweep_id = control.start(SweepSpec.from_dict(raw), store=store)
        if not args.json and not args.wait:
            print(f"sweep {sweep_id} started; `python -m engine sweep status {sweep_id}` shows its progress")
            return 0
    jobs.reconcile(store)
    control.advance(store, sweep_id)
    while args.wait and store.get_sweep(sweep_id).finished_at is None:
        time.sleep(1.0)
        jobs.reconcile(store)  # a worker that died would otherwise hold its trial forever
        control.advance(store, sweep_id)
    report = control.status(store, sweep_id)
    print(json.dumps(report, default=str) if args.json else _sweep_text(report))
    return 0

