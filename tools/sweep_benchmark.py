"""Benchmark: a small Optuna sweep's best validation accuracy against the default config over 3 seeds.

digits3d (a subset: data.options num_samples) + tutorial3d, few epochs, run by
the lab's own worker slots in a throw-away workspace. Prints one JSON line and
a README table row. Usage: python tools/sweep_benchmark.py [--digits 300] [--epochs 6] [--trials 6]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--digits", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sweep-benchmark-"))
    os.environ.setdefault("CONV3D_LAB_HOME", str(home))
    os.environ.setdefault("CONV3D_LAB_STANDBY", "0")

    from engine import statistics
    from engine.config import RunConfig
    from engine.jobs import control as jobs
    from engine.runs import ENDED_STATUSES
    from engine.store import open_store
    from engine.datasets import splits
    from engine.sweeps import control, summary

    base = RunConfig.from_dict({
        "data": {"dataset": "digits3d", "options": {"num_samples": args.digits}},
        "model": {"architecture": "tutorial3d"},
        "training": {"epochs": args.epochs, "max_saliency_samples": 0},
    })
    store = open_store()
    started = time.time()
    group = splits.new_group_id(splits.SEEDS_PREFIX)
    seed_runs = jobs.launch_group(splits.seed_configs(base, 3), group=group, store=store)
    sweep_id = control.start({
        "base": base.to_dict(), "method": "optuna", "trials": args.trials, "metric": "val_accuracy",
        "direction": "maximize",
        "space": {"training.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                  "model.dropout_rate": {"low": 0.0, "high": 0.5},
                  "training.batch_size": {"choices": [16, 32]}},
    }, store=store)
    while store.get_sweep(sweep_id).finished_at is None or any(
        store.get_run(run_id).status not in ENDED_STATUSES for run_id in seed_runs
    ):
        time.sleep(2)
        jobs.reconcile(store)
        control.advance(store, sweep_id)
    default_values = [summary.best_value(store.epoch_history(run_id), "val_accuracy", "maximize") for run_id in seed_runs]
    default = statistics.estimate(default_values)
    report = control.status(store, sweep_id)
    result = {
        "digits": args.digits, "epochs": args.epochs, "trials": args.trials,
        "default_val_accuracy": default.to_dict(), "default_values": default_values,
        "sweep_best_val_accuracy": report["best"]["value"] if report["best"] else None,
        "sweep_best_params": report["best"]["params"] if report["best"] else None,
        "trials_pruned": report["trials_pruned"], "wall_s": round(time.time() - started, 1),
    }
    print(json.dumps(result))
    print(f"| sweep vs default, digits3d ({args.digits} digits) + tutorial3d, {args.epochs} epochs | "
          f"`python tools/sweep_benchmark.py` | default config {default.mean:.3f} ± {default.std:.3f} best val accuracy "
          f"over 3 seeds; {args.trials}-trial Optuna sweep best {result['sweep_best_val_accuracy']:.3f} "
          f"({report['trials_pruned']} pruned); {result['wall_s'] / 60:.1f} min on one CPU slot |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
