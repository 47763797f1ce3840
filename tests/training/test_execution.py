"""How a run executes: precision and XLA choices with their reasons, the strategy, the input cache, the record.

The choosers take the machine's facts as arguments, so a CPU without bfloat16
or a machine with two GPUs is simulated here without the hardware; the
end-to-end runs fake the detection functions the worker calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import paths, validation
from engine.machine import execution
from engine.config import RunConfig
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import execute_run, pipeline, precision

NO_BF16 = frozenset({"fpu", "sse2", "avx2", "avx512f"})
BF16 = frozenset({"avx512f", "avx512_bf16", "amx_bf16"})


def test_auto_on_a_cpu_without_bfloat16_is_float32_and_says_why():
    policy, reason = execution.choose_precision("auto", cpu_flags=NO_BF16, gpu_capabilities=[])
    assert policy == "float32"
    assert "no bfloat16" in reason and "avx512_bf16" in reason


def test_auto_on_a_cpu_with_bfloat16_is_mixed_bfloat16():
    policy, reason = execution.choose_precision("auto", cpu_flags=BF16, gpu_capabilities=[])
    assert policy == "mixed_bfloat16" and "amx_bf16" in reason


@pytest.mark.parametrize("capabilities, expected", [
    ([(8, 0)], "mixed_float16"), ([(7, 0), (9, 0)], "mixed_float16"), ([(6, 1)], "float32"), ([(8, 6), (6, 0)], "float32"),
])
def test_auto_on_gpus_needs_tensor_cores_on_every_gpu(capabilities, expected):
    policy, reason = execution.choose_precision("auto", cpu_flags=BF16, gpu_capabilities=capabilities)
    assert policy == expected and "compute capability" in reason


def test_auto_on_a_bfloat16_cpu_keeps_a_small_model_in_float32():
    small, reason = execution.choose_precision("auto", cpu_flags=BF16, gpu_capabilities=[], forward_flops=19e6)
    assert small == "float32" and "small" in reason and "19 MFLOP" in reason
    big, _ = execution.choose_precision("auto", cpu_flags=BF16, gpu_capabilities=[], forward_flops=4.6e9)
    assert big == "mixed_bfloat16"


def test_a_run_of_a_small_model_on_a_bfloat16_cpu_stays_float32_and_says_why(lab_home, monkeypatch):
    monkeypatch.setattr(execution, "cpu_flags", lambda *args: BF16)
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    run_id, _ = _tiny_run(epochs=1)
    chosen = execution.load(paths.run_dir(run_id))
    assert chosen.precision == "float32" and "the model is small" in chosen.precision_reason


def test_a_configured_precision_is_kept_whatever_the_machine():
    assert execution.choose_precision("float32", cpu_flags=BF16, gpu_capabilities=[(9, 0)])[0] == "float32"
    assert execution.choose_precision("mixed_float16", cpu_flags=NO_BF16, gpu_capabilities=[])[0] == "mixed_float16"


def test_xla_auto_is_off_where_the_benchmark_did_not_show_it_faster(monkeypatch):
    assert execution.choose_xla("auto", device="cpu", precision="float32") == (
        False, "auto: XLA off (measured no faster on CPU with float32)")
    on, reason = execution.choose_xla("auto", device="gpu", precision="mixed_float16")
    assert not on and "not yet measured" in reason
    monkeypatch.setitem(execution.XLA_FASTER, ("gpu", "mixed_float16"), True)
    assert execution.choose_xla("auto", device="gpu", precision="mixed_float16")[0] is True
    assert execution.choose_xla("on", device="cpu", precision="float32")[0] is True
    assert execution.choose_xla("off", device="gpu", precision="mixed_float16")[0] is False


def test_several_gpus_mirror_and_scale_the_global_batch():
    assert execution.choose_strategy(4, 8)[:3] == ("mirrored", 4, 32)
    assert execution.choose_strategy(1, 8)[:3] == ("default", 1, 8)
    assert execution.choose_strategy(0, 8)[:3] == ("default", 1, 8)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert execution.cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_bf16", "amx_tile"}
    assert execution.cpu_flags(tmp_path / "missing") == frozenset()


def test_the_cache_plan_holds_splits_that_fit_the_fraction_of_free_memory(monkeypatch):
    rows = pipeline.VolumeRows(np.zeros((10, 4, 4, 4, 1), np.float32), np.arange(10))  # 2,560 bytes
    assert pipeline.plan_cache([rows], available=100_000, fraction=0.25)[0] is True
    fits, reason = pipeline.plan_cache([rows, rows], available=10_000, fraction=0.25)
    assert not fits and "read from disk" in reason
    monkeypatch.setenv(pipeline.INPUT_CACHE_FRACTION_ENV, "0")
    assert pipeline.plan_cache([rows], available=10**12)[0] is False
    monkeypatch.setenv(pipeline.INPUT_CACHE_FRACTION_ENV, "lots")
    with pytest.raises(Exception, match="not a number"):
        pipeline.plan_cache([rows], available=10**12)


def test_a_split_in_memory_reads_the_same_normalised_volumes(tmp_path):
    volumes = np.random.default_rng(0).normal(size=(12, 4, 4, 4, 1)).astype(np.float32)
    rows = pipeline.VolumeRows(volumes, np.array([7, 2, 9, 0]), "zscore")
    held = pipeline.in_memory(rows)
    assert isinstance(held.volumes, np.ndarray) and held.volumes.shape == (4, 4, 4, 4, 1)
    np.testing.assert_allclose(held[np.arange(4)], rows[np.arange(4)], rtol=1e-6)


def _tiny_run(**training) -> tuple[int, object]:
    config = {
        "data": {"dataset": "shapes3d", "options": {"num_samples": 48, "size": 12, "mode": "location"}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
        "training": {"epochs": 2, "batch_size": 8, "max_saliency_samples": 4, **training},
    }
    store = open_store()
    run_id = store.create_run(validation.validate(RunConfig.from_dict(config)), status=RunStatus.RUNNING)
    summary = execute_run(store, run_id)
    assert summary["status"] == RunStatus.FINISHED, store.get_run(run_id).error
    return run_id, store


def test_a_run_on_a_cpu_without_bfloat16_records_float32_and_why(lab_home, monkeypatch):
    monkeypatch.setattr(execution, "cpu_flags", lambda *args: NO_BF16)
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    run_id, store = _tiny_run()
    chosen = execution.load(paths.run_dir(run_id))
    assert chosen.precision == "float32" and "no bfloat16" in chosen.precision_reason
    assert chosen.xla is False and chosen.input_cache is True
    assert any("execution: float32" in event["message"] for event in store.get_events(run_id))


def test_a_run_on_a_bfloat16_cpu_trains_mixed_with_a_float32_output(lab_home, monkeypatch):
    import keras

    monkeypatch.setattr(execution, "cpu_flags", lambda *args: BF16)
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    monkeypatch.setattr(execution, "BF16_MIN_FORWARD_FLOPS", 0)  # this tiny model counts as big enough
    run_id, store = _tiny_run()
    chosen = execution.load(paths.run_dir(run_id))
    assert chosen.precision == "mixed_bfloat16" and "avx512_bf16" in chosen.precision_reason
    model = keras.models.load_model(paths.run_dir(run_id) / "last.keras")
    assert model.get_layer("block1_conv").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    assert store.get_run(run_id).test_metrics["accuracy"] is not None


def test_a_run_records_under_a_mirrored_strategy_with_the_batch_scaled(lab_home, monkeypatch):
    # Two "GPUs" as the chooser sees them; the strategy mirrors over this machine's CPU, which
    # exercises the same build, fit, recording and checkpoint code under MirroredStrategy.
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [(8, 0), (8, 0)])
    monkeypatch.setattr(precision, "mirrored_devices", lambda: ["/cpu:0"])
    run_id, store = _tiny_run(precision="float32", xla="off")
    chosen = execution.load(paths.run_dir(run_id))
    assert (chosen.strategy, chosen.replicas, chosen.batch_size) == ("mirrored", 2, 16)
    assert "MirroredStrategy" in chosen.precision_reason and "MirroredStrategy" in chosen.summary()
    history = store.epoch_history(run_id)
    assert [row["epoch"] for row in history] == [1, 2]
    assert store.get_predictions(run_id, "val") is not None  # the recorder's predictions under the strategy
    assert (paths.run_dir(run_id) / "best.keras").exists()


def test_the_record_of_a_run_that_never_started_is_none(tmp_path):
    assert execution.load(tmp_path) is None
    (tmp_path / execution.EXECUTION_FILE).write_text("{not json")
    assert execution.load(tmp_path) is None


@pytest.mark.skipif(not precision.gpu_capabilities(), reason="needs a GPU")
def test_on_a_gpu_auto_picks_float16_on_tensor_cores():
    from engine.config import TrainingConfig

    chosen = precision.resolve(TrainingConfig())
    expected = "mixed_float16" if min(precision.gpu_capabilities()) >= (7, 0) else "float32"
    assert chosen.device == "gpu" and chosen.precision == expected
