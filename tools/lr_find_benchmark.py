"""Does the learning-rate range test point at a good rate? digits3d + tutorial3d, measured.

Runs ``lr-find`` once, then trains the same config at each rate of a grid
(1e-5 ... 1e-1) for a few epochs and reports the best validation accuracy of
each. The suggestion passes when it lies within a factor of 10 of the grid's
best rate. Prints one JSON object; README.md's "Measured figures" holds the result.

    python tools/lr_find_benchmark.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("CONV3D_LAB_HOME", tempfile.mkdtemp(prefix="lr-bench-"))
    from engine import validation
    from engine.config import RunConfig
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training import execute_run
    from engine.training.lr_find import find_learning_rate

    store = open_store()
    base = RunConfig()  # digits3d + tutorial3d, Adam, batch 32
    base.training.epochs = args.epochs
    base.training.max_saliency_samples = 0
    started = time.perf_counter()
    sweep = find_learning_rate(store, validation.validate(base))
    sweep_seconds = time.perf_counter() - started
    suggested = sweep["suggestion"]["suggested"]
    grid = {}
    for rate in GRID:
        config = base.copy()
        config.training.learning_rate = rate
        run_id = store.create_run(validation.validate(config), status=RunStatus.RUNNING)
        execute_run(store, run_id)
        accuracies = [row.get("val_accuracy", 0.0) for row in store.epoch_history(run_id)]
        grid[rate] = max([a for a in accuracies if a == a] or [0.0])
        print(f"lr {rate:g}: best val accuracy {grid[rate]:.3f}", file=sys.stderr)
    best_rate = max(grid, key=grid.get)
    factor = max(suggested, best_rate) / min(suggested, best_rate)
    print(json.dumps({
        "suggested": suggested, "suggestion": sweep["suggestion"], "sweep_steps": sweep["steps"],
        "sweep_seconds": round(sweep_seconds, 1), "epochs": args.epochs, "grid_val_accuracy": grid,
        "best_grid_rate": best_rate, "factor": factor, "within_10x": factor <= 10 and math.isfinite(factor),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
