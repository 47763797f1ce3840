"""``python -m engine bench [train]``: the lab against a plain Keras script, in one invocation.

``bench`` alone is ``bench train``. It generates (or reads from the cache) the
dataset once in a scratch folder, then runs the arms as fresh processes
(``python -m engine bench-arm SPEC``), repetitions alternating (plain, engine,
engine..., then the reverse order), so a machine that gets busier half-way
through slows both alike. Figures are medians over the repetitions; the JSON
keys are stable (``BENCH_VERSION`` changes when one does).

The Compare page is timed by ``python tools/bench_compare_page.py`` (Streamlit's AppTest: not the engine's).
``bench import`` times a DICOM import against pydicom alone (engine/bench/import_bench.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine import argtypes
from engine.machine import execution
from engine.config import PRECISIONS, XLA_MODES
from engine.errors import ConfigError, LabError

BENCH_VERSION = 1
# Defaults of `bench train`: small enough for a shared 2-core CPU in a few minutes.
DEFAULTS = {"arch": "tutorial3d", "dataset": "digits3d", "input_shape": (16, 16, 16, 1), "batch_size": 32,
            "samples": 600, "epochs": 4, "repeats": 2}
# Seconds one arm may take before the benchmark gives up on it.
ARM_TIMEOUT_S = 3600


def _dataset_options(dataset: str, input_shape: tuple[int, ...], samples: int | None) -> dict[str, Any]:
    """The built-in dataset's options for ``samples`` volumes with an edge of max(D, H, W); a sentence otherwise."""
    from engine import datasets

    depth, height, width, channels = input_shape
    if channels != 1:
        raise ConfigError([f"--input-shape ... {channels}: the built-in datasets have one channel; give C = 1."])
    if dataset not in datasets.DATASETS:
        raise ConfigError([f"--dataset {dataset!r}: the benchmark generates a built-in dataset; use one of "
                           f"{', '.join(datasets.DATASETS)}."])
    info = datasets.dataset_info(dataset)
    knobs = info.get("options") or {}
    options: dict[str, Any] = {}
    edge = max(depth, height, width)
    if "size" in knobs:
        options["size"] = edge
    elif tuple(info["volume_shape"][:3]) != (depth, height, width):
        raise ConfigError([f"--input-shape: {dataset} has volumes of {info['volume_shape']}; give that shape "
                           "or choose a dataset with a size option (digits3d, phantom_lesions, shapes3d)."])
    if samples is not None:
        if "num_samples" not in knobs:
            raise ConfigError([f"--samples: {dataset} has a fixed number of samples; leave --samples out."])
        options["num_samples"] = samples
    problems = datasets.validate_options(dataset, options)
    if problems:
        raise ConfigError(problems)
    return options


def _prepare_dataset(dataset: str, input_shape: tuple[int, ...], samples: int | None, scratch: Path
                     ) -> tuple[str, dict[str, Any]]:
    """(dataset name, options) both arms train on, generated once into the scratch data folder.

    A cubic shape is the built-in dataset itself; another shape (e.g. 128 x 128 x 64, the Keras.io CT
    example's) is the built-in generated at the largest edge and imported through the engine's NPZ
    importer, which resamples every volume to (D, H, W).
    """
    from engine import datasets
    from engine.datasets.importing import ImportOptions, import_dataset

    options = _dataset_options(dataset, input_shape, samples)
    loaded = datasets.load_dataset(dataset, options)
    shape = tuple(input_shape[:3])
    if tuple(loaded.volume_shape[:3]) == shape:
        return dataset, options
    import numpy as np

    source = scratch / "bench_source.npz"
    np.savez(source, x=np.asarray(loaded.x)[..., 0], y=np.asarray(loaded.y))
    name = f"bench_{'x'.join(map(str, shape))}"
    import_dataset(source, name, ImportOptions(format="npz", shape=shape, x_key="x", y_key="y"), replace=True)
    source.unlink()
    return name, {}


def _run_arm(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    spec = {**spec, "spawned_at": time.time()}
    result = subprocess.run(
        [sys.executable, "-m", "engine", "bench-arm", json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=ARM_TIMEOUT_S, check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise LabError(f"The {spec['arm']} arm failed (exit {result.returncode}): {' / '.join(tail)}")
    return json.loads(lines[-1])


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.fmean(present), 4) if present else None


def _std(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.stdev(present), 4) if len(present) > 1 else None


def _summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm over its repetitions: medians of the timings, the worst memory, every accuracy."""
    first = results[0]
    steady = statistics.median(result["steady_epoch_s"] for result in results)
    samples_per_s = statistics.median(result["samples_per_s"] for result in results)
    keys = ("arm", "requested_precision", "requested_xla", "precision", "xla", "precision_reason", "xla_reason",
            "input_cache", "input_reason", "device", "train_samples", "forward_flops_per_sample",
            "train_flops_per_sample", "peak_flop_per_s")
    summary = {key: first.get(key) for key in keys}

    def median_of(key):
        values = [result[key] for result in results if result.get(key) is not None]
        return statistics.median(values) if values else None

    summary.update({
        "steady_epoch_s": round(steady, 4),
        "first_epoch_s": median_of("first_epoch_s"),
        "samples_per_s": round(samples_per_s, 3),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
        "val_accuracy": [result["val_accuracy"] for result in results],
        "val_accuracy_mean": _mean([result["val_accuracy"] for result in results]),
        "val_accuracy_std": _std([result["val_accuracy"] for result in results]),
        "flop_per_s": median_of("flop_per_s"),
        "peak_share": median_of("peak_share"),
        "device_busy_share": median_of("device_busy_share"),
        "input_epoch_s": median_of("input_epoch_s"),
        "input_share": median_of("input_share"),
        "epoch_seconds": [result["epoch_seconds"] for result in results],
    })
    return summary


def run_train_bench(args: argparse.Namespace, progress=None) -> dict[str, Any]:
    """Every arm, ``args.repeats`` times, alternating; the summary (JSON-ready)."""
    from engine import datasets, models
    from engine.config import ModelConfig

    input_shape = tuple(args.input_shape)
    options = _dataset_options(args.dataset, input_shape, args.samples)
    models.check_input(args.arch, input_shape, datasets.dataset_info(args.dataset, options)["num_classes"],
                       ModelConfig(architecture=args.arch, padding=args.padding))
    scratch = Path(tempfile.mkdtemp(prefix="conv3d-bench-"))
    previous_data = os.environ.get("CONV3D_LAB_DATA")
    try:
        env = {**os.environ, "CONV3D_LAB_DATA": str(scratch / "data")}
        env.pop("CONV3D_LAB_DB", None)
        os.environ["CONV3D_LAB_DATA"] = env["CONV3D_LAB_DATA"]
        # Generated once; every arm reads it from the cache.
        dataset, options = _prepare_dataset(args.dataset, input_shape, args.samples, scratch)
        base = {"dataset": dataset, "options": options, "arch": args.arch, "padding": args.padding,
                "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed}
        arms = [("plain", {**base, "arm": "plain"})] + [
            (f"engine {precision} xla-{xla}", {**base, "arm": "engine", "precision": precision, "xla": xla})
            for precision, xla in itertools.product(args.precision, args.xla)
        ]
        load_before = os.getloadavg()
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in arms}
        for repeat in range(args.repeats):
            order = arms if repeat % 2 == 0 else arms[::-1]
            for name, spec in order:
                # Each repetition trains with the next seed (the same for every arm): the accuracies
                # over the repetitions are then over seeds.
                spec = {**spec, "seed": args.seed + repeat}
                workspace = scratch / f"runs-{repeat}-{len(results[name])}-{name.replace(' ', '-')}"
                arm_env = {**env, "CONV3D_LAB_HOME": str(workspace)}
                if progress:
                    progress(f"repeat {repeat + 1}/{args.repeats}: {name}")
                results[name].append(_run_arm(spec, arm_env))
                shutil.rmtree(workspace, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if previous_data is None:
            os.environ.pop("CONV3D_LAB_DATA", None)
        else:
            os.environ["CONV3D_LAB_DATA"] = previous_data
    summaries = {name: _summarise(runs) for name, runs in results.items()}
    plain = summaries["plain"]
    for name, summary in summaries.items():
        summary["epoch_time_vs_plain"] = round(summary["steady_epoch_s"] / plain["steady_epoch_s"], 4)
        summary["samples_per_s_vs_plain"] = round(summary["samples_per_s"] / plain["samples_per_s"], 4)
    return {
        "bench": "train",
        "version": BENCH_VERSION,
        "accuracy": accuracy_against_float32(summaries),
        "machine": {
            "device": plain["device"],
            "cpu_bf16": any(flag in execution.cpu_flags() for flag in execution.BF16_CPU_FLAGS),
            "cpus": os.cpu_count(),
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
        },
        "setup": {"arch": args.arch, "dataset": args.dataset, "options": options, "input_shape": list(input_shape),
                  "padding": args.padding, "batch_size": args.batch_size, "epochs": args.epochs,
                  "repeats": args.repeats, "seed": args.seed, "train_samples": plain["train_samples"]},
        "arms": summaries,
    }


def accuracy_against_float32(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each arm's final validation accuracy over the seeds (mean, 95% t-interval) and its difference from the
    float32 engine arm's (the plain script's when there is none), paired by seed: repetition i trains every
    arm from seed --seed + i, so the same split and initial weights. ``within_noise``: that difference's
    interval holds 0 (engine/statistics.py)."""
    from engine import statistics as lab_statistics

    reference = next((name for name, arm in summaries.items()
                      if arm["arm"] == "engine" and arm["precision"] == "float32"), "plain")
    base = summaries[reference]["val_accuracy"]
    arms: dict[str, Any] = {}
    for name, arm in summaries.items():
        estimate = lab_statistics.metric_estimate("val_accuracy", arm["val_accuracy"])
        entry: dict[str, Any] = {"estimate": estimate.to_dict() if estimate else None}
        if name != reference:
            difference = lab_statistics.difference(arm["val_accuracy"], base, paired=True)
            entry["difference"] = difference.to_dict() if difference else None
            entry["within_noise"] = (None if difference is None or difference.low is None
                                     else not difference.significant)
        arms[name] = entry
    return {"reference": reference, "metric": "val_accuracy", "arms": arms}


def _print_train(report: dict[str, Any]) -> None:
    setup, machine = report["setup"], report["machine"]
    print(f"{setup['arch']} on {setup['dataset']} {'x'.join(map(str, setup['input_shape']))}, batch "
          f"{setup['batch_size']}, {setup['train_samples']} training samples, {setup['epochs']} epochs x "
          f"{setup['repeats']} repeats on {machine['device']['name']} (load {machine['load_average_before'][0]:.1f}"
          f" -> {machine['load_average_after'][0]:.1f})")
    print(f"{'arm':<32} {'epoch s':>8} {'vs plain':>8} {'samples/s':>10} {'first s':>8} {'RSS MB':>8} "
          f"{'GFLOP/s':>8} {'input':>6}  val acc")
    for name, arm in report["arms"].items():
        accuracy = ", ".join(f"{value:.3f}" for value in arm["val_accuracy"] if value is not None)
        input_share = f"{arm['input_share']:.0%}" if arm["input_share"] is not None else "-"
        print(f"{name:<32} {arm['steady_epoch_s']:>8.3f} {arm['epoch_time_vs_plain']:>8.3f} "
              f"{arm['samples_per_s']:>10.1f} {arm['first_epoch_s'] or 0:>8.1f} {arm['peak_rss_mb']:>8.0f} "
              f"{(arm['flop_per_s'] or 0) / 1e9:>8.1f} {input_share:>6}  {accuracy}")
    for name, arm in report["arms"].items():
        if arm["arm"] == "engine":
            print(f"{name}: {arm['precision_reason']}; {arm['xla_reason']}; {arm['input_reason']}")
    accuracy = report["accuracy"]
    for name, entry in accuracy["arms"].items():
        estimate, difference = entry["estimate"], entry.get("difference")
        if estimate is None:
            continue
        line = f"val accuracy, {name}: {estimate['mean']:.4f}"
        if estimate["low"] is not None:
            line += f" (95% CI {estimate['low']:.4f} to {estimate['high']:.4f}, n={estimate['n']})"
        if difference is not None and difference["low"] is not None:
            line += (f"; vs {accuracy['reference']}: {difference['difference']:+.4f} (95% CI "
                     f"{difference['low']:+.4f} to {difference['high']:+.4f}, paired by seed: "
                     f"{'within noise' if entry['within_noise'] else 'a real difference'})")
        print(line)


def cmd_bench(args) -> int:
    if args.what == "import":
        return _cmd_import(args)
    for name in ("arch", "dataset", "input_shape", "batch_size", "samples", "epochs", "repeats"):
        if getattr(args, name) is None:
            setattr(args, name, DEFAULTS[name])
    if args.repeats < 1 or args.epochs < 2:
        raise ConfigError(["--repeats must be 1 or more and --epochs 2 or more (the first epoch is not steady)."])
    progress = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    report = run_train_bench(args, progress)
    if args.json:
        print(json.dumps(report))
    else:
        _print_train(report)
    return 0


def _cmd_import(args) -> int:
    from engine.bench import import_bench

    values = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in import_bench.DEFAULTS.items()}
    if values["series"] < 2 or values["slices"] < 3 or values["size"] < 4:
        raise ConfigError(["bench import: give --series 2 or more, --slices 3 or more and --size 4 or more."])
    progress = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
    report = import_bench.run_import_bench(values["series"], values["slices"], values["size"], values["repeats"],
                                           progress)
    if args.json:
        print(json.dumps(report))
    else:
        import_bench.print_import(report)
    return 0


def cmd_bench_arm(args) -> int:
    from engine.bench import arm

    print(json.dumps(arm.run_arm(json.loads(args.spec)), default=str))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    # The Compare page's benchmark is tools/bench_compare_page.py (it drives the page with Streamlit's AppTest).
    p = sub.add_parser("bench", help="benchmarks: train (default: the engine against plain Keras) or import (DICOM)")
    p.add_argument("what", nargs="?", choices=("train", "import"), default="train")
    p.add_argument("--json", action="store_true", help="one JSON object with stable keys")
    train = p.add_argument_group("bench train")
    train.add_argument("--arch", help=f"architecture (default {DEFAULTS['arch']})")
    train.add_argument("--dataset", help=f"built-in dataset (default {DEFAULTS['dataset']})")
    train.add_argument("--input-shape", type=int, nargs=4, metavar=("D", "H", "W", "C"),
                       help="volume shape with C = 1 (default 16 16 16 1); a non-cubic shape is resampled from the "
                            "built-in generated at the largest edge")
    train.add_argument("--padding", choices=("valid", "same"), help="convolution padding (default: the architecture's)")
    train.add_argument("--batch-size", type=argtypes.positive_int)
    train.add_argument("--samples", type=argtypes.positive_int, help="volumes in the dataset (all splits)")
    train.add_argument("--epochs", type=int, help="epochs per arm (default 4)")
    train.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["float32"],
                       help="the engine's precision(s); several values compare the engine against itself")
    train.add_argument("--xla", nargs="+", choices=XLA_MODES, default=["off"], help="the engine's XLA mode(s)")
    train.add_argument("--repeats", type=argtypes.positive_int,
                       help="repetitions of every arm (default: train 2, import 2)")
    train.add_argument("--seed", type=int, default=0, help="seed of the first repetition (then seed+1, ...)")
    imports = p.add_argument_group("bench import")
    imports.add_argument("--series", type=int, help="DICOM series written and imported (default 24)")
    imports.add_argument("--slices", type=int, help="files (slices) per series (default 48)")
    imports.add_argument("--size", type=int, help="rows and columns of each slice (default 128)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench-arm", help="internal: one arm of `bench train` (a JSON spec)")
    p.add_argument("spec")
    p.set_defaults(func=cmd_bench_arm)


__all__ = ["add_parsers", "run_train_bench"]
