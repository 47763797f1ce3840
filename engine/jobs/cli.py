"""A run's lifecycle: ``train`` (in the foreground), ``launch`` (queued for a worker), ``runs``, ``show``, ``stop``,
``resume``, ``reconcile`` and the internal ``worker RUN`` (what a launched run's process executes).

``train`` does what a worker does, in this process: it records the run as running with this pid and a
heartbeat, checks that the run fits in memory (``jobs.admission``) and honours the tests' worker entry point.
The listing commands reconcile first (runs whose worker is gone are marked interrupted), so what they print is
the state a person can act on. ``train`` and ``launch`` take the run-configuration flags of
engine/training/cli.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from typing import Any

from engine import argtypes
from engine.config import RunConfig
from engine.errors import ConfigError
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, RunRecord, RunStatus, fold_label


def add_train(sub) -> None:
    from engine.training import cli as training_cli

    p = sub.add_parser("train", help="train in the foreground")
    training_cli.add_launch_options(p)
    p.set_defaults(func=cmd_train)


def add_launch(sub) -> None:
    from engine.training import cli as training_cli

    p = sub.add_parser("launch", help="queue a run for a background worker")
    training_cli.add_launch_options(p)
    p.set_defaults(func=cmd_launch)


def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--status", action="append", help=f"only runs with this status (repeatable): {', '.join(RunStatus)}"
    )
    p.add_argument("--archived", action="store_true", help="list archived runs too")
    p.set_defaults(func=cmd_runs)


def add_show(sub) -> None:
    p = sub.add_parser("show", help="one run: config, status, metrics")
    p.add_argument("run", type=argtypes.run_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)


def add_stop_resume_worker(sub) -> None:
    for name, func, text in (
        ("stop", cmd_stop, "stop a queued or running run"),
        ("resume", cmd_resume, "resume an interrupted or stopped run"),
        ("worker", cmd_worker, "internal: run one claimed run in this process"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", type=argtypes.run_id)
        p.set_defaults(func=func)


def add_reconcile(sub) -> None:
    p = sub.add_parser("reconcile", help="mark runs whose worker is gone as interrupted")
    p.set_defaults(func=cmd_reconcile)


def cmd_train(args) -> int:
    from engine.datasets import splits
    from engine.training.cli import config_from_args

    config = config_from_args(args)
    if config.training.init_from is not None:
        from engine.weights import warm_start
        from engine.store import open_store

        warm_start.check_source(config, open_store())
    if not args.force:
        from engine.jobs import admission

        admission.check_fits(config)
    configs = splits.seed_configs(config, args.seeds)
    if len(configs) == 1:
        return _train_one(configs[0], args, group=None)
    # Folds / seeds in the foreground: one after the other, in this process, as one group.
    group = splits.new_group_id(splits.CV_PREFIX if config.data.folds else splits.SEEDS_PREFIX)
    if not args.json:
        print(f"group {group}: {len(configs)} runs, trained one after the other")
    codes = [_train_one(each, args, group=group) for each in configs]
    if not args.json:
        from engine.sweeps import cli as sweeps_cli

        sweeps_cli.print_group(group)
    return max(codes)


def _train_one(config: RunConfig, args, group: str | None) -> int:
    import socket

    from engine.machine.devices import FOREGROUND_SLOT
    from engine.store import journal, open_store
    from engine.store.heartbeat import Heartbeat
    from engine.jobs import worker
    from engine.training import execute_run

    store = open_store()
    run_id = store.create_run(config, status=RunStatus.RUNNING, group=group)
    now = time.time()
    store.update_run(
        run_id, pid=os.getpid(), host=socket.gethostname(), slot=FOREGROUND_SLOT, started_at=now, heartbeat_at=now
    )
    if not args.json:
        fold = f", fold {fold_label(config)}" if fold_label(config) else ""
        print(f"run {run_id}: {config.model.architecture} on {config.data.dataset}, {config.training.epochs} epochs{fold}")
    verbose = 1 if sys.stdout.isatty() and not args.json else 2
    testing = worker.testing_module()  # the tests' entry point (slow or failing batches); None in production
    try:
        with Heartbeat(store, run_id):
            summary = execute_run(store, run_id, verbose=verbose, callbacks=testing.callbacks() if testing else ())
    except KeyboardInterrupt:
        print(f"run {run_id} stopped.", file=sys.stderr)
        return 130
    finally:
        journal.run_ended(store, run_id)  # the folder copy of its outcome, and a backup that holds it
    run = store.get_run(run_id)
    if run.pid != os.getpid():
        print(
            f"run {run_id} was taken over by another process (pid {run.pid}) while this one was suspended; "
            "this process stopped without recording more.",
            file=sys.stderr,
        )
        return 1
    _print_summary(summary, args.json)
    return 0 if summary["status"] == RunStatus.FINISHED else 1


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    best, test = summary["best"], summary["test"]
    print(f"run {summary['run_id']} {summary['status']} after {summary['epochs_done']} epochs")
    if best["value"] is not None:
        print(f"best {best['monitor']} {best['value']:.4f} at epoch {best['epoch']}")
    if test["accuracy"] is not None:
        auc = f", AUC {test['auc']:.4f}" if test["auc"] is not None else ""
        print(f"test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}{auc}")
    if summary.get("error"):
        print(f"error: {summary['error']}")


def cmd_launch(args) -> int:
    from engine import jobs

    from engine.datasets import splits
    from engine.store import open_store
    from engine.training.cli import config_from_args

    config = config_from_args(args)
    configs = splits.seed_configs(config, args.seeds)
    if len(configs) == 1:
        run_id = jobs.launch(config, force=args.force)
        if args.json:
            print(json.dumps({"run_id": run_id, "status": open_store().get_run(run_id).status.value, "group": None}))
        else:
            print(run_id)
        return 0
    group = splits.new_group_id(splits.CV_PREFIX if config.data.folds else splits.SEEDS_PREFIX)
    run_ids = jobs.launch_group(configs, group=group, force=args.force)
    if args.json:
        store = open_store()
        print(json.dumps({"group": group, "run_ids": run_ids,
                          "statuses": [store.get_run(run_id).status.value for run_id in run_ids]}))
    else:
        print(f"group {group}: runs {' '.join(map(str, run_ids))} (`python -m engine group {group}` summarises them)")
    return 0


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def cmd_runs(args) -> int:
    from engine import jobs
    from engine.store import open_store

    store = open_store()
    jobs.reconcile(store)
    statuses = None
    if args.status:
        unknown = [status for status in args.status if status not in {s.value for s in RunStatus}]
        if unknown:
            raise ConfigError([f"--status {unknown[0]!r} is not a run status; use one of "
                               f"{', '.join(status.value for status in RunStatus)}."])
        statuses = [RunStatus(status) for status in args.status]
    runs = store.list_runs(statuses=statuses, archived=None if args.archived else False)
    if args.json:
        print(json.dumps([_run_json(run, with_history=False, store=store) for run in runs], default=str))
        return 0
    if not runs:
        print("No runs yet; start one with `python -m engine train` or `python -m engine launch`."
              if args.archived or not store.list_runs(limit=1) else
              "Every run is archived; `python -m engine runs --archived` lists them.")
        return 0
    silent = {run.id: age for run, age in jobs.silent_runs(store)}
    print(f"{'id':>4}  {'name':<22} {'status':<11} {'epochs':>7}  {'dataset':<16} {'arch':<11} {'best':>16}  "
          f"{'test acc':<8}  group")
    for run in runs:
        best = f"{run.monitor} {run.best_value:.4f}" if run.best_value is not None else "-"
        test = run.test_metrics.get("accuracy")
        test_text = f"{test:.4f}" if test is not None else "-"
        note = f"  (no heartbeat for {silent[run.id]:.0f} s: `stop {run.id}` ends it)" if run.id in silent else ""
        print(
            f"{run.id:>4}  {run.name[:22]:<22} {run.status.label:<11} "
            f"{run.epochs_done:>3}/{run.epochs_total:<3}  {run.dataset:<16} {run.architecture:<11} "
            f"{best:>16}  {test_text:<8}  {run.group or '-'}{note}" + ("  [archived]" if run.archived else "")
            + (f"  tags: {', '.join(run.tags)}" if run.tags else "")
        )
    return 0


def _run_json(run: RunRecord, *, with_history: bool, store) -> dict[str, Any]:
    result = run.to_dict()
    if not with_history:
        del result["config"], result["traceback"]
    else:
        result["history"] = store.epoch_history(run.id)
    return result


def cmd_show(args) -> int:
    from engine import jobs
    from engine.store import open_store

    store = open_store()
    jobs.reconcile(store)
    run = store.get_run(args.run)
    if args.json:
        print(json.dumps(_run_json(run, with_history=True, store=store), default=str))
        return 0
    print(f"run {run.id} '{run.name}': {run.status.label}, epoch {run.epochs_done}/{run.epochs_total}")
    print(f"  {run.architecture} on {run.dataset}; created {_when(run.created_at)}, "
          f"started {_when(run.started_at)}, finished {_when(run.finished_at)}")
    if run.pid:
        print(f"  pid {run.pid} on {run.host} (slot {run.slot}), heartbeat {_when(run.heartbeat_at)}")
    if run.error:
        print(f"  error: {run.error}")
    if run.lineage:
        print(f"  lineage: {run.lineage}")  # the run or file its weights started from (docs/transfer.md)
    print("  config: " + run.config.to_json())
    history = store.epoch_history(run.id)
    if history:
        columns = ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc", CURRENT_LR_METRIC, EPOCH_TIME_METRIC)
        names = [n for n in columns if n in history[0]]
        print("  " + f"{'epoch':>5} " + " ".join(f"{n:>12}" for n in names))
        for row in history:
            print("  " + f"{row['epoch']:>5} " + " ".join(f"{row.get(n, float('nan')):>12.4g}" for n in names))
    if run.test_metrics:
        test = run.test_metrics
        print("  test (best weights, epoch {}): ".format(test.get("epoch")) +
              ", ".join(f"{k} {v:.4f}" for k, v in test.items() if k != "epoch"))
    return 0


def cmd_stop(args) -> int:
    from engine import jobs

    status = jobs.stop(args.run, wait=True)
    print(f"run {args.run}: {status.label}")
    return 0


def cmd_resume(args) -> int:
    from engine import jobs

    jobs.resume(args.run)
    print(f"run {args.run}: resumed (queued)")
    return 0


def cmd_reconcile(args) -> int:
    from engine import jobs

    from engine.store import open_store

    store = open_store()
    changed = jobs.reconcile(store)
    print(f"{len(changed)} run(s) marked interrupted" + (f": {', '.join(map(str, changed))}" if changed else ""))
    for run, age in jobs.silent_runs(store):
        print(f"run {run.id}: no heartbeat for {age:.0f} s although its process (pid {run.pid}) lives; "
              f"it may be suspended or hung: `python -m engine stop {run.id}` ends it.")
    return 0


def cmd_worker(args) -> int:
    from engine.jobs import worker

    return worker.run_worker(args.run)

