"""``python -m engine bench train`` and tools/gpu_check.sh: the arms, the stable keys, the refusals.

The dry run of the GPU check runs every arm (plain; engine float32 / auto x XLA off / on) on 8^3 volumes
in fresh processes: the whole benchmark end to end on a CPU.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from engine import paths
from engine.cli import main

ARM_KEYS = {
    "arm", "requested_precision", "requested_xla", "precision", "xla", "precision_reason", "xla_reason",
    "input_cache", "input_reason", "device", "train_samples", "forward_flops_per_sample", "train_flops_per_sample",
    "peak_flop_per_s", "steady_epoch_s", "first_epoch_s", "samples_per_s", "peak_rss_mb", "val_accuracy",
    "flop_per_s", "peak_share", "val_accuracy_mean", "val_accuracy_std", "device_busy_share", "input_epoch_s", "input_share", "epoch_seconds",
    "epoch_time_vs_plain", "samples_per_s_vs_plain",
}


def test_the_gpu_check_dry_run_prints_one_json_line_with_every_arm(tmp_path):
    result = subprocess.run(
        ["bash", str(paths.REPO_ROOT / "tools" / "gpu_check.sh"), "--dry-run"],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["bench"] == "train" and report["version"] == 1
    assert set(report["machine"]) >= {"device", "cpu_bf16", "cpus", "load_average_before", "load_average_after"}
    assert report["setup"]["input_shape"] == [8, 8, 8, 1] and report["setup"]["batch_size"] == 4
    arms = report["arms"]
    assert set(arms) == {"plain", "engine float32 xla-off", "engine float32 xla-on", "engine auto xla-off",
                         "engine auto xla-on"}
    for name, arm in arms.items():
        assert set(arm) == ARM_KEYS, name
        assert arm["steady_epoch_s"] > 0 and arm["samples_per_s"] > 0 and arm["peak_rss_mb"] > 100
        assert arm["forward_flops_per_sample"] > 0 and arm["flop_per_s"] > 0
        assert len(arm["epoch_seconds"]) == 1 and len(arm["epoch_seconds"][0]) == 2
    assert arms["plain"]["epoch_time_vs_plain"] == 1.0 and arms["plain"]["precision"] == "float32"
    assert arms["engine float32 xla-on"]["xla"] is True and arms["engine float32 xla-off"]["xla"] is False
    # auto on a CPU: float32 for a model this small (8 MFLOP per sample), bfloat16 CPU or not, and it says why.
    assert arms["engine auto xla-off"]["precision"] == "float32"
    assert arms["engine auto xla-off"]["precision_reason"].startswith("auto:")
    assert arms["engine float32 xla-off"]["input_share"] is not None and arms["plain"]["input_share"] is None
    # The engine's validation accuracy comes from the recorder's one predict pass, into the epoch's logs.
    assert all(arm["val_accuracy"][0] is not None for arm in arms.values())
    assert report["accuracy"]["reference"] == "engine float32 xla-off"
    assert set(report["accuracy"]["arms"]) == set(arms)


def test_the_accuracy_comparison_is_paired_by_seed_against_the_float32_engine():
    from engine.bench.cli import accuracy_against_float32

    def arm(kind, precision, accuracies):
        return {"arm": kind, "precision": precision, "val_accuracy": accuracies}

    summaries = {"plain": arm("plain", "float32", [0.80, 0.70, 0.90]),
                 "engine float32 xla-off": arm("engine", "float32", [0.81, 0.71, 0.90]),
                 "engine mixed_bfloat16 xla-off": arm("engine", "mixed_bfloat16", [0.80, 0.72, 0.89]),
                 "engine auto xla-off": arm("engine", "mixed_bfloat16", [0.61, 0.52, 0.70])}
    report = accuracy_against_float32(summaries)
    assert report["reference"] == "engine float32 xla-off"
    close = report["arms"]["engine mixed_bfloat16 xla-off"]
    assert close["difference"]["difference"] == pytest.approx(-0.0033, abs=1e-4) and close["within_noise"] is True
    assert close["estimate"]["n"] == 3 and close["estimate"]["low"] < close["estimate"]["mean"]
    # 0.2 lower on every seed: paired, that is no noise even though the seeds spread by 0.2.
    assert report["arms"]["engine auto xla-off"]["within_noise"] is False
    assert "difference" not in report["arms"]["engine float32 xla-off"]
    # No float32 engine arm: the plain script is the reference.
    del summaries["engine float32 xla-off"]
    assert accuracy_against_float32(summaries)["reference"] == "plain"


@pytest.mark.parametrize("argv, expected", [
    (["bench", "--input-shape", "8", "8", "8", "3"], "one channel"),
    (["bench", "--dataset", "no_such_set"], "built-in dataset"),
    (["bench", "--epochs", "1"], "--epochs 2 or more"),
    (["bench", "import", "--slices", "2"], "--slices 3 or more"),
    (["bench", "--dataset", "digits3d", "--input-shape", "16", "16", "16", "1", "--samples", "5000"], "num_samples"),
])
def test_bench_mistakes_get_one_sentence(capsys, argv, expected):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error


def test_flops_are_counted_from_the_layer_shapes():
    import keras

    from engine.bench import arm as bench

    inputs = keras.Input((4, 4, 4, 1))
    x = keras.layers.Conv3D(2, 3, padding="same")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, outputs)
    # Conv: 2 x 64 output voxels x (27 x 1 x 2) weights; Dense: 2 x 128 x 3.
    assert bench.forward_flops_per_sample(model) == 2 * 64 * 27 * 2 + 2 * 128 * 3


def test_a_non_cubic_shape_is_the_built_in_resampled_through_the_importer(tmp_path, monkeypatch):
    from engine import datasets
    from engine.bench import cli as bench_cli

    monkeypatch.setenv("CONV3D_LAB_DATA", str(tmp_path / "data"))
    name, options = bench_cli._prepare_dataset("shapes3d", (8, 8, 6, 1), 16, tmp_path)
    assert options == {} and name == "bench_8x8x6"
    loaded = datasets.load_dataset(name)
    assert tuple(loaded.volume_shape) == (8, 8, 6, 1) and len(loaded.y) == 16
    assert not (tmp_path / "bench_source.npz").exists()
