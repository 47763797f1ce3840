"""What does augmentation cost the input pipeline? Samples per second of ``make_dataset`` (training) over
in-memory volumes, with no augmentation, the four earlier ones, each new one alone at probability 1, and all
nine at their default probabilities. Nothing trains: this is the pipeline alone, as the model would pull it.

    python tools/augment_benchmark.py [--sizes 32 48] [--samples 64] [--batch-size 8] [--epochs 2] [--json]

docs/augmentation.md quotes the figures (with the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EARLIER = ["flip", "rotate90", "shift", "intensity"]


def _cases() -> list[tuple[str, dict]]:
    from engine.config import AUGMENT_KNOBS, AUGMENTATIONS

    cases: list[tuple[str, dict]] = [("none", {"augment": False}), ("flip+rotate90+shift+intensity",
                                                                   {"augment": True, "augmentations": EARLIER})]
    for name, (probability, _) in AUGMENT_KNOBS.items():
        cases.append((f"{name} (p=1)", {"augment": True, "augmentations": [name], probability: 1.0}))
    cases.append(("all nine (default p)", {"augment": True, "augmentations": list(AUGMENTATIONS)}))
    return cases


def measure(size: int, samples: int, batch_size: int, epochs: int, training: dict) -> float:
    """Samples per second over ``epochs`` epochs after one warm-up epoch (tracing, thread pools)."""
    import numpy as np

    from engine.config import TrainingConfig
    from engine.training.pipeline import make_dataset

    rng = np.random.default_rng(0)
    volumes = rng.normal(size=(samples, size, size, size, 1)).astype(np.float32)
    labels = (np.arange(samples) % 2).astype(np.float32).reshape(-1, 1)
    dataset = make_dataset(volumes, labels, batch_size, training=True, seed=0,
                           training_config=TrainingConfig(**training))
    for _ in dataset:  # warm-up epoch
        pass
    started = time.perf_counter()
    for _ in range(epochs):
        for _ in dataset:
            pass
    return samples * epochs / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import tensorflow as tf

    rows = []
    for size in args.sizes:
        for label, training in _cases():
            rate = measure(size, args.samples, args.batch_size, args.epochs, training)
            rows.append({"size": size, "augmentation": label, "samples_per_s": round(rate, 1)})
            if not args.json:
                print(f"{size}^3  {label:32s} {rate:9.1f} samples/s", flush=True)
    machine = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), "tensorflow": tf.__version__,
               "gpus": len(tf.config.list_physical_devices("GPU"))}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}))
    else:
        print(f"machine: {machine}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
