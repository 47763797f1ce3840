"""The command line: ``python -m engine COMMAND ...``.

A user mistake exits with status 2 and one readable sentence on stderr, never
a traceback. A run that fails exits 1 after its failure is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import datetime
from typing import Any

from engine import argtypes, statistics
from engine.config import AUGMENT_KNOBS, AUGMENTATIONS, OPTIMIZERS, PRECISIONS, XLA_MODES, RunConfig
from engine.errors import ConfigError, LabError
from engine.runs import CURRENT_LR_METRIC, EPOCH_TIME_METRIC, RunRecord, RunStatus, fold_label


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: a usage mistake is one ``error: ...`` line and exit 2.

    (argparse's own ``error`` prints the whole usage block first; the sub-command
    parsers are made with this class too, as ``add_subparsers`` uses the parent's.)
    """

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(message.split())}; `{self.prog} --help` lists the options.\n")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run configuration (override --config)")
    group.add_argument("--config", metavar="FILE.json", help="a RunConfig JSON file (`show RUN --json` prints one)")
    group.add_argument("--dataset", help="dataset name (see `datasets`)")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a dataset knob, repeatable")
    group.add_argument("--arch", help="architecture preset (see `archs`)")
    group.add_argument("--width", type=float, help="width multiplier of the architecture")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", type=float, help="learning rate")
    group.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    group.add_argument("--schedule", help="constant, exponential, cosine or plateau")
    group.add_argument("--dropout", type=float, help="dropout rate (default: the preset's)")
    group.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--bn-momentum", type=float, help="BatchNorm momentum (Keras default 0.99; 0.9 adapts faster)")
    group.add_argument("--l2", type=float)
    group.add_argument("--padding", help="convolution padding: valid (the references) or same (fits small volumes)")
    group.add_argument("--loss", help="crossentropy or focal")
    group.add_argument("--class-weight", help="none or balanced")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--augmentations", type=lambda text: [a.strip() for a in text.split(",") if a.strip()],
                       metavar="A,B,...", help=f"which augmentations (with --augment): {', '.join(AUGMENTATIONS)}")
    group.add_argument("--augment-knob", action="append", default=[], metavar="KNOB=VALUE",
                       help="an augmentation's probability or strength, repeatable, e.g. rotate_probability=0.5 "
                            "rotate_degrees=15 (docs/augmentation.md lists them)")
    group.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--monitor", help="val_loss, val_accuracy or val_auc")
    group.add_argument("--val-fraction", type=float)
    group.add_argument("--test-fraction", type=float)
    group.add_argument("--positive-class", metavar="CLASS",
                       help="two-class datasets: the class sensitivity and the threshold are about (default: the dataset's)")
    group.add_argument("--seed", type=int)
    group.add_argument("--precision", choices=PRECISIONS,
                       help="auto (default: bfloat16 on CPUs with it, float16 on tensor-core GPUs), float32, "
                            "mixed_bfloat16 or mixed_float16")
    group.add_argument("--xla", choices=XLA_MODES, help="XLA compilation: auto (where measured faster), on or off")
    group.add_argument("--folds", type=int, metavar="K",
                       help="k-fold cross-validation: one run per fold, linked as a group (test split held out once)")
    group.add_argument("--init-from", metavar="RUN|FILE",
                       help="start from a run's weights (run:12) or a .keras / .h5 weights file (docs/transfer.md)")
    group.add_argument("--freeze-blocks", type=int, metavar="K", help="freeze the first K blocks (needs --init-from)")
    group.add_argument("--backbone-lr-scale", type=float, metavar="X",
                       help="the backbone's learning rate as a fraction of --lr (needs --init-from)")
    group.add_argument("--pretext", help="rotation: self-supervised pretraining, labels unused; none: classify")
    group.add_argument("--name", help="a name for the run")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run config from --config (if any) with the command-line overrides applied, validated."""
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                config = RunConfig.from_json(handle.read())
        except OSError as e:
            raise ConfigError([f"Cannot read the config file {args.config!r} ({e.strerror}); check the path."]) from e
        except UnicodeDecodeError as e:
            raise ConfigError([
                f"The config file {args.config!r} is not UTF-8 text (byte {e.start}); "
                "save it as UTF-8 JSON, e.g. from `python -m engine show RUN --json`."
            ]) from e
    else:
        config = RunConfig()
    overrides = {
        ("data", "dataset"): args.dataset,
        ("data", "val_fraction"): args.val_fraction,
        ("data", "test_fraction"): args.test_fraction,
        ("data", "folds"): getattr(args, "folds", None),
        ("data", "positive_class"): getattr(args, "positive_class", None),
        ("model", "architecture"): args.arch,
        ("model", "width_multiplier"): args.width,
        ("model", "dropout_rate"): args.dropout,
        ("model", "batchnorm"): args.batchnorm,
        ("model", "l2"): args.l2,
        ("model", "batchnorm_momentum"): args.bn_momentum,
        ("model", "padding"): args.padding,
        ("training", "epochs"): args.epochs,
        ("training", "batch_size"): args.batch_size,
        ("training", "learning_rate"): args.lr,
        ("training", "optimizer"): args.optimizer,
        ("training", "schedule"): args.schedule,
        ("training", "loss"): args.loss,
        ("training", "class_weight"): args.class_weight,
        ("training", "augment"): args.augment,
        ("training", "augmentations"): getattr(args, "augmentations", None),
        ("training", "early_stopping"): args.early_stopping,
        ("training", "monitor"): args.monitor,
        ("training", "seed"): args.seed,
        ("training", "precision"): getattr(args, "precision", None),
        ("training", "xla"): getattr(args, "xla", None),
        ("training", "init_from"): getattr(args, "init_from", None),
        ("training", "freeze_blocks"): getattr(args, "freeze_blocks", None),
        ("training", "backbone_lr_scale"): getattr(args, "backbone_lr_scale", None),
        ("training", "pretext"): getattr(args, "pretext", None),
    }
    for (section, field_name), value in overrides.items():
        if value is not None:
            setattr(getattr(config, section), field_name, value)
    if args.dataset and not args.config:
        config.data.options = {}
    config.data.options.update(argtypes.dataset_options(args.option))
    for text in getattr(args, "augment_knob", []):
        knob, number = _parse_augment_knob(text)
        setattr(config.training, knob, number)
    if args.name is not None:
        config.name = args.name
    from engine import validation  # loads both registries

    return validation.validate(config)


# ----------------------------------------------------------------- commands
def cmd_datasets(args) -> int:
    from engine import datasets

    if args.action == "delete":
        from engine.datasets import cli as datasets_cli

        return datasets_cli.cmd_delete(args)
    catalog = datasets.list_datasets()
    if args.json:
        print(json.dumps(catalog, indent=2, default=str))
        return 0
    for info in catalog:
        shape = "x".join(str(s) for s in info.get("volume_shape", ()))
        print(f"{info['name']:<18} {info.get('num_classes', '?'):>2} classes  {shape:<12} {info['description']}")
    return 0


def cmd_archs(args) -> int:
    from engine import models
    from engine.config import ModelConfig

    input_shape = tuple(args.input_shape)
    rows = []
    for spec in models.arch_catalog():
        try:
            info = models.describe(spec["name"], input_shape, args.classes, ModelConfig(architecture=spec["name"]))
            params, note = info["params"], ""
        except LabError as e:
            params, note = None, str(e)
        rows.append({**spec, "input_shape": list(input_shape), "classes": args.classes, "params": params, "note": note})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        params = f"{row['params']:>12,}" if row["params"] is not None else f"{'-':>12}"
        print(f"{row['name']:<11} {params} params  {row['description']}" + (f"  [{row['note']}]" if row["note"] else ""))
    return 0


def cmd_describe(args) -> int:
    from engine import models
    from engine.config import ModelConfig

    try:
        raw = json.loads(args.model_json)
        model_config = ModelConfig(**raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise ConfigError([f"--model-json must be a JSON object of model fields ({e})."]) from e
    info = models.describe(
        model_config.architecture, tuple(args.input_shape), args.classes, model_config, batch_size=args.batch_size
    )
    print(json.dumps(info, default=str))
    return 0


def cmd_train(args) -> int:
    from engine.datasets import splits

    config = config_from_args(args)
    if config.training.init_from is not None:
        from engine import warm_start
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
        _print_group(group)
    return max(codes)


def _train_one(config: RunConfig, args, group: str | None) -> int:
    import socket

    from engine.devices import FOREGROUND_SLOT
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


def cmd_launch(args) -> int:
    from engine import jobs

    from engine.store import open_store
    from engine.datasets import splits

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


def _print_group(group: str) -> None:
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
    _print_group(args.group)
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


def cmd_lr_find(args) -> int:
    from engine.store import open_store
    from engine.training.lr_find import find_learning_rate

    config = config_from_args(args)
    result = find_learning_rate(open_store(), config, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps)
    if args.json:
        print(json.dumps(result))
        return 0
    suggestion = result["suggestion"]
    print(f"run {result['run_id']}: {result['steps']} batches of {result['batch_size']}, "
          f"rates {result['learning_rates'][0]:.2g} to {result['learning_rates'][-1]:.2g}")
    print(f"suggested learning rate {suggestion['suggested']:.3g} (steepest descent of the smoothed loss; "
          f"loss minimum at {suggestion['minimum']:.3g}, minimum / 10 = {suggestion['minimum_over_10']:.3g})")
    return 0


def cmd_augment_preview(args) -> int:
    import numpy as np

    from engine.training import augment_preview

    config = config_from_args(args)
    batch = augment_preview.first_batch(config, args.count)
    middle = batch["before"].shape[1] // 2
    slices = {name: batch[name][:, middle, :, :, 0] for name in ("before", "after")}  # middle axial, channel 0
    if args.out:
        np.savez(args.out, **slices)
    rows = [
        {"label": label, **{f"{name}_{stat}": float(getattr(batch[name][i], stat)())
                            for name in ("before", "after") for stat in ("min", "max", "mean", "std")}}
        for i, label in enumerate(batch["labels"])
    ]
    if args.json:
        print(json.dumps({"volumes": rows, "slice": middle, "out": args.out}))
        return 0
    print(f"the first {len(rows)} training volumes of epoch 1 (seed {config.training.seed}), "
          f"augmented with {', '.join(config.training.augmentations)}:")
    for i, row in enumerate(rows):
        print(f"  {i}: {row['label']}: before {row['before_min']:.3g}..{row['before_max']:.3g} "
              f"(mean {row['before_mean']:.3g}, std {row['before_std']:.3g}); after {row['after_min']:.3g}.."
              f"{row['after_max']:.3g} (mean {row['after_mean']:.3g}, std {row['after_std']:.3g})")
    if args.out:
        print(f"middle axial slices (index {middle}) written to {args.out}")
    return 0


def _parse_augment_knob(text: str) -> tuple[str, float]:
    names = [name for pair in AUGMENT_KNOBS.values() for name in pair]
    key, _, raw = text.partition("=")
    key = key.strip()
    if key not in names:
        raise ConfigError([f"--augment-knob {text!r}: name one of {', '.join(names)}, e.g. rotate_degrees=15."])
    try:
        return key, float(raw)
    except ValueError:
        raise ConfigError([f"--augment-knob {text!r}: the value must be a number, e.g. {key}=0.5."]) from None


def cmd_worker(args) -> int:
    from engine.jobs import worker

    return worker.run_worker(args.run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="Conv3D Lab engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list the datasets (built-in and imported); `datasets delete NAME`")
    p.add_argument("action", nargs="?", choices=("list", "delete"), default="list")
    p.add_argument("target", nargs="?", metavar="NAME", help="the imported dataset to delete")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("archs", help="list the architectures with parameter counts for an input")
    p.add_argument("--json", action="store_true")
    p.add_argument("--input-shape", type=int, nargs=4, default=[16, 16, 16, 1], metavar=("D", "H", "W", "C"))
    p.add_argument("--classes", type=int, default=10)
    p.set_defaults(func=cmd_archs)

    p = sub.add_parser("describe", help="one model's layer table, parameters and memory estimate as JSON")
    p.add_argument("--model-json", default='{"architecture": "tutorial3d"}', help="the model section of a RunConfig")
    p.add_argument("--input-shape", type=int, nargs=4, default=[16, 16, 16, 1], metavar=("D", "H", "W", "C"))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=argtypes.positive_int, default=32)
    p.set_defaults(func=cmd_describe)

    for name, func, text in (
        ("train", cmd_train, "train in the foreground"),
        ("launch", cmd_launch, "queue a run for a background worker"),
    ):
        p = sub.add_parser(name, help=text)
        _add_config_options(p)
        p.add_argument("--seeds", type=int, default=1, metavar="N",
                       help="repeat over N seeds (seed, seed+1, ...) as one group")
        p.add_argument("--json", action="store_true")
        p.add_argument("--force", action="store_true",
                       help="skip the memory check (a run whose estimate exceeds the device memory)")
        p.set_defaults(func=func)

    p = sub.add_parser("group", help="a fold / seed / sweep group: per-fold metrics at the best epoch, mean ± std")
    p.add_argument("group", help="the group id (`runs` shows it), e.g. cv-3fa9c1")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_group)

    from engine.doctor import lr_range

    p = sub.add_parser("lr-find", help="learning-rate range test: an exponential sweep from fresh weights")
    _add_config_options(p)
    sweep = p.add_argument_group("the sweep")
    sweep.add_argument("--min-lr", type=float, default=lr_range.DEFAULT_MIN_LR, help="the first rate")
    sweep.add_argument("--max-lr", type=float, default=lr_range.DEFAULT_MAX_LR, help="the last rate (at most)")
    sweep.add_argument("--steps", type=int, default=lr_range.DEFAULT_STEPS, help="batches at most")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("augment-preview", help="the first training volumes of epoch 1 before and after augmentation")
    _add_config_options(p)
    p.add_argument("--count", type=argtypes.positive_int, default=4, help="volumes (at most the batch size)")
    p.add_argument("--out", metavar="FILE.npz", help="write their middle axial slices (before, after) here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_augment_preview)

    p = sub.add_parser("runs", help="list the runs")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--status", action="append", help=f"only runs with this status (repeatable): {', '.join(RunStatus)}"
    )
    p.add_argument("--archived", action="store_true", help="list archived runs too")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="one run: config, status, metrics")
    p.add_argument("run", type=argtypes.run_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    for name, func, text in (
        ("stop", cmd_stop, "stop a queued or running run"),
        ("resume", cmd_resume, "resume an interrupted or stopped run"),
        ("worker", cmd_worker, "internal: run one claimed run in this process"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("run", type=argtypes.run_id)
        p.set_defaults(func=func)

    p = sub.add_parser("sweep", help="a hyperparameter sweep: `sweep SPEC.json [--wait]`, `sweep status ID`, `sweep stop ID`")
    p.add_argument("target", metavar="SPEC|status|stop", help="a sweep spec JSON file, or status / stop")
    p.add_argument("id", nargs="?", type=int, help="the sweep id (status, stop); none lists the sweeps")
    p.add_argument("--wait", action="store_true", help="return when every trial has ended")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("reconcile", help="mark runs whose worker is gone as interrupted")
    p.set_defaults(func=cmd_reconcile)

    from engine.evaluation import cli as evaluation_cli

    evaluation_cli.add_parser(sub)
    from engine.datasets import cli as datasets_cli

    datasets_cli.add_parser(sub)
    from engine import compare_cli

    compare_cli.add_parsers(sub)
    from engine import bench_cli

    bench_cli.add_parsers(sub)

    from engine import share_cli

    share_cli.add_parser(sub)

    from engine.doctor import cli as doctor_cli

    doctor_cli.add_parser(sub)
    from engine.remedies import cli as remedies_cli

    remedies_cli.add_parser(sub)
    from engine.inference import cli as inference_cli

    inference_cli.add_parsers(sub)
    from engine.planning import cli as planning_cli

    planning_cli.add_parser(sub)
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
