"""Peak resident memory of training on a dataset larger than a few GB (`python tools/bench_memory.py`).

Builds a ``shapes3d``-style dataset (mode "location": a noisy cube in the left
or right half) of about ``--gigabytes`` of float32 64^3 volumes straight into
the dataset cache of a scratch workspace, chunk by chunk, so this process never
holds it either; the volumes are shapes3d's own generator run on chunks with
one seed per chunk, so they differ from what ``load_dataset`` would generate
for the same options. Then it trains one epoch through the real path
(``python -m engine train`` in a child process: split, tf.data pipeline, fit,
validation predictions, test evaluation, saliency maps) and prints the child's
peak resident memory (``ru_maxrss`` from ``wait4``), the wall time and the
training throughput recorded by the run.

``--old-ref REV`` also measures the engine of git revision REV (e.g. the commit
before training read volumes from disk) on a smaller dataset of
``--old-gigabytes``, and the current engine on that same dataset: the old
pipeline copied every split into RAM (and tf.data copied the training split
twice more), so its peak grows with the dataset, and on the full size it would
need a machine with far more memory than the figure it is compared with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from engine import datasets  # noqa: E402  (after the path set-up; no TensorFlow)
from engine.datasets import cache, generators  # noqa: E402

DATASET = "shapes3d"
# Volumes generated per chunk: about 100 MB at 64^3.
CHUNK_VOLUMES = 100


def dataset_options(num_samples: int, size: int) -> dict:
    return datasets.resolve_options(
        DATASET, {"num_samples": num_samples, "size": size, "mode": "location", "noise": 0.3}
    )


def write_dataset(data_dir: Path, num_samples: int, size: int) -> float:
    """Write the cache entry of shapes3d with these options chunk by chunk; returns its size in GB."""
    os.environ["CONV3D_LAB_DATA"] = str(data_dir)
    options = dataset_options(num_samples, size)
    key = cache.fingerprint(DATASET, options)
    final = cache.entry_dir(DATASET, key)
    if cache.load(DATASET, key) is None:
        staging = Path(tempfile.mkdtemp(prefix=f".{DATASET}-", dir=final.parent))
        labels = np.empty(num_samples, dtype=np.int64)
        # Plain writes, not a writable memory map: pages written through a map count in this
        # process's resident memory, and a child started afterwards inherits that high-water
        # mark in its ru_maxrss (Linux copies it at fork), which would inflate every figure.
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (num_samples, size, size, size, 1)}
        with open(staging / "x.npy", "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, header)
            for start in range(0, num_samples, CHUNK_VOLUMES):
                count = min(CHUNK_VOLUMES, num_samples - start)
                chunk, chunk_labels, _ = generators.shapes3d({**options, "num_samples": count, "seed": start})
                handle.write(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
                labels[start : start + count] = chunk_labels
        np.savez(staging / "labels.npz", y=labels)
        meta = {"class_names": datasets.DATASETS[DATASET].class_names(options), "options": options}
        (staging / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        os.rename(staging, final)
    # Without the entry load_dataset would generate the whole set in memory: fail loudly instead.
    if cache.load(DATASET, key) is None:
        raise SystemExit(f"the cache entry {final} was not found after writing it")
    return (final / "x.npy").stat().st_size / 1e9


def train_once(engine_root: Path, workspace: Path, data_dir: Path, config: dict) -> dict:
    """``python -m engine train`` from ``engine_root`` in a child process; its peak RSS, wall time and summary."""
    workspace.mkdir(parents=True, exist_ok=True)
    config_path = workspace / "config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "CONV3D_LAB_HOME": str(workspace), "CONV3D_LAB_DATA": str(data_dir),
           "PYTHONPATH": str(engine_root), "TF_CPP_MIN_LOG_LEVEL": "2",
           # The bounded-memory reads are what this measures: a split this size is cached in memory
           # on a machine with more than 4x its size free (engine/training/pipeline.py).
           "CONV3D_LAB_INPUT_CACHE_FRACTION": "0"}
    env.pop("CONV3D_LAB_DB", None)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "--config", str(config_path), "--json"],
        cwd=engine_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stdout_reader = _Reader(child.stdout)
    stderr_reader = _Reader(child.stderr)
    polled_hwm_gb = _poll_peak_rss(child.pid)
    # wait4 gives this child's own resource usage; ru_maxrss is its peak resident set in KiB.
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    stdout, stderr = stdout_reader.text(), stderr_reader.text()
    summary_lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not summary_lines:
        raise SystemExit(f"training failed (exit {child.returncode}):\n{stderr[-3000:]}")
    summary = json.loads(summary_lines[-1])
    history = _epoch_history(workspace, summary["run_id"])
    return {
        "summary": summary, "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9, "polled_vmhwm_gb": polled_hwm_gb,
        "wall_s": seconds, "history": history,
    }


def _poll_peak_rss(pid: int, interval_s: float = 0.2) -> float:
    """The child's VmHWM (peak resident set) from /proc, read until it exits: a cross-check of ru_maxrss."""
    peak_kib = 0
    status_path = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status_path.read_text()
        except OSError:
            break
        if "VmHWM:" not in text:  # a zombie: exited, not yet reaped
            break
        peak_kib = max(peak_kib, int(text.split("VmHWM:")[1].split()[0]))
        time.sleep(interval_s)
    return peak_kib * 1024 / 1e9


class _Reader:
    """Drain a child's pipe in a thread, so a chatty child never blocks on a full pipe."""

    def __init__(self, stream):
        import threading

        self._chunks: list[str] = []
        self._thread = threading.Thread(target=lambda: self._chunks.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        self._thread.join()
        return "".join(self._chunks)


def _epoch_history(workspace: Path, run_id: int) -> list[dict]:
    from engine.store import open_store

    os.environ["CONV3D_LAB_HOME"] = str(workspace)
    os.environ.pop("CONV3D_LAB_DB", None)
    return open_store().epoch_history(run_id)


def export_engine(revision: str, target: Path) -> Path:
    """The engine/ package of git revision ``revision`` unpacked under ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "engine"],
        check=True, capture_output=True,
    ).stdout
    archive_path = target / "engine.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    archive_path.unlink()
    return target


def run_config(num_samples: int, size: int, args) -> dict:
    return {
        "name": f"memory benchmark {num_samples} x {size}^3",
        "data": {"dataset": DATASET, "options": dataset_options(num_samples, size), "normalization": "zscore"},
        "model": {"architecture": args.arch, "width_multiplier": args.width},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "max_saliency_samples": 200},
    }


def report(label: str, dataset_gb: float, result: dict) -> None:
    history = result["history"]
    epoch = history[-1] if history else {}
    summary = result["summary"]
    print(
        f"{label}: dataset {dataset_gb:.2f} GB on disk, peak RSS {result['peak_rss_gb']:.2f} GB "
        f"(polled VmHWM {result['polled_vmhwm_gb']:.2f} GB), "
        f"wall {result['wall_s']:.0f} s (epoch {epoch.get('epoch_time_s', float('nan')):.0f} s, "
        f"{epoch.get('samples_per_s', float('nan')):.1f} train samples/s), status {summary['status']}, "
        f"val accuracy {epoch.get('val_accuracy', float('nan')):.3f}, test accuracy {summary['test']['accuracy']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.3, help="dataset size on disk (4096 volumes of 64^3)")
    parser.add_argument("--size", type=int, default=64, help="edge of the cubic volumes")
    parser.add_argument("--arch", default="tutorial3d")
    parser.add_argument("--width", type=float, default=0.125, help="width multiplier (small: the data is the point)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--old-ref", help="also measure the engine of this git revision (smaller dataset)")
    parser.add_argument("--old-gigabytes", type=float, default=0.54, help="dataset size for the --old-ref comparison")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)

    scratch = args.workdir or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    volume_bytes = 4 * args.size**3
    results = {}
    try:
        data_dir = scratch / "data"
        num_samples = int(round(args.gigabytes * 1e9 / volume_bytes))
        started = time.perf_counter()
        dataset_gb = write_dataset(data_dir, num_samples, args.size)
        print(f"wrote {num_samples} volumes of {args.size}^3 ({dataset_gb:.2f} GB) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        result = train_once(REPO_ROOT, scratch / "runs-current", data_dir, run_config(num_samples, args.size, args))
        report("current engine", dataset_gb, result)
        results["current"] = {"dataset_gb": dataset_gb, **result}

        if args.old_ref:
            old_samples = int(round(args.old_gigabytes * 1e9 / volume_bytes))
            old_gb = write_dataset(data_dir, old_samples, args.size)
            old_root = export_engine(args.old_ref, scratch / "old-engine")
            for label, root in ((f"engine at {args.old_ref}", old_root), ("current engine", REPO_ROOT)):
                workspace = scratch / f"runs-{label.replace(' ', '-')}-small"
                result = train_once(root, workspace, data_dir, run_config(old_samples, args.size, args))
                report(label, old_gb, result)
                results[f"{label} small"] = {"dataset_gb": old_gb, **result}
        else:
            print("old approach not measured (pass --old-ref REV to measure an earlier engine on a smaller set)")
    finally:
        if args.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
