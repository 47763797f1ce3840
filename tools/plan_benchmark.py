"""Does the automatic plan reach the hand-set config on phantom_lesions? Measured over seeds.

Plans phantom_lesions (with the learning-rate range test), trains the planned
config once per seed, then the best hand-set config of docs/figures.md
(kerasio3d x0.25, same padding, BatchNorm momentum 0.9, batch 16, 10 epochs)
over the same seeds, and prints the test accuracy of every run as it ends and
one JSON object at the end. ``--max-epochs`` caps the planned epochs (to the
hand config's 10 on a busy CPU); the report says when it did.

    python tools/plan_benchmark.py [--seeds 3] [--max-epochs 10] [--no-hand]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASET = "phantom_lesions"
HAND = {  # docs/figures.md: test accuracy 1.000, AUC 1.000 (one seed)
    "data": {"dataset": DATASET},
    "model": {"architecture": "kerasio3d", "width_multiplier": 0.25, "padding": "same", "batchnorm_momentum": 0.9},
    "training": {"batch_size": 16, "epochs": 10},
}


def _train(store, config) -> dict:
    from engine import validation
    from engine.runs import RunStatus
    from engine.training import execute_run

    config.training.max_saliency_samples = 0
    run_id = store.create_run(validation.validate(config), status=RunStatus.RUNNING)
    started = time.perf_counter()
    summary = execute_run(store, run_id)
    return {"run_id": run_id, "seed": config.training.seed, "test_accuracy": summary["test"]["accuracy"],
            "test_auc": summary["test"]["auc"], "epochs_done": summary["epochs_done"],
            "best_epoch": summary["best"]["epoch"], "seconds": round(time.perf_counter() - started, 1)}


def _summary(rows: list[dict]) -> dict:
    accuracies = [row["test_accuracy"] for row in rows if row["test_accuracy"] is not None]
    return {"runs": rows, "mean_test_accuracy": statistics.fmean(accuracies) if accuracies else None,
            "min_test_accuracy": min(accuracies) if accuracies else None}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the planned epochs")
    parser.add_argument("--no-hand", dest="hand", action="store_false", help="skip the hand-set config's runs")
    args = parser.parse_args()
    os.environ.setdefault("CONV3D_LAB_HOME", tempfile.mkdtemp(prefix="plan-bench-"))
    from engine import planning
    from engine.config import RunConfig
    from engine.store import open_store

    store = open_store()
    started = time.perf_counter()
    plan = planning.make_plan(DATASET, lr_test=True, seed=0, store=store)
    plan_seconds = round(time.perf_counter() - started, 1)
    planned = plan.config.copy()
    capped = args.max_epochs is not None and planned.training.epochs > args.max_epochs
    if capped:
        planned.training.epochs = args.max_epochs
    print(f"plan ({plan_seconds} s): {json.dumps(plan.config.to_dict())}", file=sys.stderr, flush=True)
    arms: dict[str, list[dict]] = {"planned": [], "hand": []}
    for arm, base in (("planned", planned), ("hand", RunConfig.from_dict(HAND))):
        if arm == "hand" and not args.hand:
            continue
        for seed in range(args.seeds):
            config = base.copy()
            config.training.seed = seed
            arms[arm].append(_train(store, config))
            print(f"{arm} seed {seed}: {json.dumps(arms[arm][-1])}", file=sys.stderr, flush=True)
    print(json.dumps({
        "dataset": DATASET, "plan_seconds": plan_seconds, "lr_test": plan.lr_test,
        "planned_config": plan.config.to_dict(), "planned_epochs_capped_to": args.max_epochs if capped else None,
        "planned": _summary(arms["planned"]), "hand": _summary(arms["hand"]) if args.hand else None,
        "machine": plan.machine.to_dict(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
