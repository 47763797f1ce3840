"""Does self-supervised pretraining help a small labelled set? Rotation pretraining, then fine-tuning, vs scratch.

1. One rotation-pretraining run (``training.pretext = "rotation"``, labels unused) of tutorial3d on the
   unlabelled volumes of digits3d (``--pretrain-digits`` source digits, generator seed 1: other rotations
   and jitter than the labelled set's).
2. For each seed: a classifier on a small labelled subset (the first ``--labelled-digits`` digits,
   generator seed 0) trained from scratch, and the same config started from the pretraining run
   (``init_from``), once training every layer and once with block 1 frozen.
3. Test accuracy (and the best validation accuracy) per arm: mean ± std over the seeds, and each
   pretrained arm minus scratch as a paired difference (same seed, same split) with its 95 % interval.

Prints one line per run and a JSON object at the end (docs/transfer.md quotes the result).

    python tools/transfer_benchmark.py [--seeds 3] [--pretrain-epochs 4] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _config(dataset_options: dict[str, Any], **training: Any):
    from engine.config import RunConfig

    return RunConfig.from_dict({
        "data": {"dataset": "digits3d", "options": dataset_options, "val_fraction": 0.2, "test_fraction": 0.3},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.5},
        "training": {"batch_size": 32, "learning_rate": 1e-3, "max_saliency_samples": 0, "monitor": "val_accuracy",
                     "xla": "off", **training},
    })


def run_benchmark(seeds: int, pretrain_digits: int, labelled_digits: int, pretrain_epochs: int, epochs: int,
                  report=print) -> dict[str, Any]:
    from engine import statistics, validation
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training import execute_run

    store = open_store()

    def train(config) -> dict[str, Any]:
        started = time.perf_counter()
        run_id = store.create_run(validation.validate(config), status=RunStatus.RUNNING)
        summary = execute_run(store, run_id)
        if summary["status"] != RunStatus.FINISHED:
            raise SystemExit(f"run {run_id} ended {summary['status']}: {summary['error']}")
        run = store.get_run(run_id)
        return {"run_id": run_id, "test_accuracy": run.test_metrics.get("accuracy"), "best_val_accuracy":
                run.best_value, "seconds": round(time.perf_counter() - started, 1)}

    pretraining = train(_config({"num_samples": pretrain_digits, "seed": 1}, pretext="rotation",
                                epochs=pretrain_epochs, seed=0))
    report(f"pretraining run {pretraining['run_id']}: rotation test accuracy {pretraining['test_accuracy']:.3f} "
           f"({pretraining['seconds']} s)")
    labelled = {"num_samples": labelled_digits, "seed": 0}
    arms = {
        "scratch": {},
        "pretrained": {"init_from": f"run:{pretraining['run_id']}"},
        "pretrained, block 1 frozen": {"init_from": f"run:{pretraining['run_id']}", "freeze_blocks": 1},
    }
    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for seed in range(seeds):
        for arm, extra in arms.items():
            outcome = train(_config(labelled, epochs=epochs, seed=seed, **extra))
            results[arm].append(outcome)
            report(f"seed {seed} {arm:<28} test accuracy {outcome['test_accuracy']:.3f}  best val accuracy "
                   f"{outcome['best_val_accuracy']:.3f}  ({outcome['seconds']} s, run {outcome['run_id']})")
    summary: dict[str, Any] = {}
    scratch = [row["test_accuracy"] for row in results["scratch"]]
    for arm, rows in results.items():
        values = [row["test_accuracy"] for row in rows]
        estimate = statistics.metric_estimate("accuracy", values)
        entry = {"test_accuracy": values, "estimate": estimate.describe(3) if estimate else None,
                 "best_val_accuracy": [row["best_val_accuracy"] for row in rows]}
        if arm != "scratch":
            difference = statistics.difference(values, scratch, paired=True)
            entry["minus_scratch"] = difference.describe(3) if difference else None
        summary[arm] = entry
        report(f"{arm:<28} test accuracy {entry['estimate']}"
               + (f"; vs scratch: {entry['minus_scratch']}" if "minus_scratch" in entry else ""))
    return {"pretraining": pretraining, "arms": summary, "runs": results,
            "settings": {"seeds": seeds, "pretrain_digits": pretrain_digits, "labelled_digits": labelled_digits,
                         "pretrain_epochs": pretrain_epochs, "epochs": epochs}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-digits", type=int, default=600, help="unlabelled source digits to pretrain on")
    parser.add_argument("--labelled-digits", type=int, default=120, help="labelled source digits to fine-tune on")
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("CONV3D_LAB_HOME", tempfile.mkdtemp(prefix="transfer-bench-"))
    os.environ.setdefault("CONV3D_LAB_DATA", os.path.join(os.environ["CONV3D_LAB_HOME"], "data"))
    started = time.perf_counter()
    result = run_benchmark(args.seeds, args.pretrain_digits, args.labelled_digits, args.pretrain_epochs,
                           args.epochs)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
