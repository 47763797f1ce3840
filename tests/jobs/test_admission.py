"""The launch memory check: a run whose model and batch cannot fit the device is refused (``force`` skips it).

The estimate is describe()'s, through the probe subprocess and its disk cache
(shared with the Train page). Small runs are admitted by the analytic bound
without a probe. No worker starts here: ``schedule`` is replaced.
"""

from __future__ import annotations

import time

import pytest

from engine import probe
from engine.machine import memory
from engine.config import RunConfig
from engine.errors import ConfigError, LabError
from engine.jobs import admission, control
from engine.models import registry
from engine.runs import RunStatus
from engine.store import open_store

SMALL = {"data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 12}},
         "model": {"architecture": "tutorial3d", "width_multiplier": 0.25}, "training": {"epochs": 1, "batch_size": 8}}
# Larger: its first-layer bound is 20^3 x 32 filters x 4 bytes x 16 = 16 MiB.
MEDIUM = {"data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 22}},
          "model": {"architecture": "tutorial3d"}, "training": {"epochs": 1, "batch_size": 16}}


@pytest.fixture(autouse=True)
def no_workers(monkeypatch):
    monkeypatch.setattr(control, "schedule", lambda store=None: [])


def _bound(raw) -> int:
    config = RunConfig.from_dict(raw)
    edge = raw["data"]["options"]["size"]
    return registry.first_layer_bytes(config.model.architecture, (edge, edge, edge, 1), config.model,
                                      config.training.batch_size)


def _set_memory(monkeypatch, nbytes: int) -> None:
    monkeypatch.setenv(memory.MEMORY_ENV, str(nbytes / 1024 / 1024))


def test_a_small_run_is_admitted_without_a_probe(monkeypatch):
    _set_memory(monkeypatch, 16 * 1024**3)
    calls = []
    monkeypatch.setattr(probe, "describe_model", lambda *args: calls.append(args))
    started = time.perf_counter()
    run_id = control.launch(RunConfig.from_dict(SMALL))
    assert time.perf_counter() - started < 2.0 and not calls
    assert open_store().get_run(run_id).status == RunStatus.QUEUED


def test_a_run_over_the_memory_is_refused_by_the_estimate_and_force_launches_it(monkeypatch, lab_home):
    bound = _bound(MEDIUM)
    # The bound fits (check_input passes) but describe's estimate (two copies of every layer's
    # activations plus the weights) cannot.
    _set_memory(monkeypatch, 2 * bound)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"needs about .* to train .* or launch with --force") as caught:
        control.launch(RunConfig.from_dict(MEDIUM))
    first_probe_s = time.perf_counter() - started
    assert caught.value.problems[0].field == "training.batch_size"
    assert open_store().list_runs() == []  # nothing recorded
    assert len(list((lab_home / probe.CACHE_DIR_NAME).iterdir())) == 1
    started = time.perf_counter()
    with pytest.raises(ConfigError):
        control.launch(RunConfig.from_dict(MEDIUM))  # the cached description: no second probe
    cached_s = time.perf_counter() - started
    assert cached_s < 1.0, (first_probe_s, cached_s)
    print(f"launch check: probe {first_probe_s:.2f} s, cached {cached_s:.3f} s")
    run_id = control.launch(RunConfig.from_dict(MEDIUM), force=True)
    assert open_store().get_run(run_id).status == RunStatus.QUEUED
    # With enough memory the same run is admitted from the cache.
    _set_memory(monkeypatch, 40 * bound)  # not surely fitting by the bound: the probe path, cached
    assert admission.check_fits(RunConfig.from_dict(MEDIUM))["estimated_training_bytes"] > 2 * bound


def test_a_model_that_cannot_be_built_is_refused(monkeypatch):
    def out_of_memory(*args):
        raise LabError("The model could not be built to describe it (it ran out of memory); lower the width.")

    monkeypatch.setattr(probe, "describe_model", out_of_memory)
    _set_memory(monkeypatch, 2 * _bound(MEDIUM))
    with pytest.raises(ConfigError, match="ran out of memory.*--force"):
        control.launch(RunConfig.from_dict(MEDIUM))


def test_the_cli_refuses_with_one_sentence_and_force_overrides(monkeypatch, capsys):
    from engine import cli

    monkeypatch.setattr(probe, "describe_model",
                        lambda *args: {"estimated_training_bytes": 10**15, "params": 1, "layers": []})
    _set_memory(monkeypatch, 2 * _bound(MEDIUM))
    argv = ["launch", "--dataset", "shapes3d", "--option", "num_samples=32", "--option", "size=22",
            "--arch", "tutorial3d", "--batch-size", "16"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--force" in err
    assert cli.main([*argv, "--force"]) == 0


def test_the_skip_rule_covers_describes_estimate():
    """describe's estimate <= ESTIMATE_PER_BOUND x max(1, width) x the first-layer bound (a small grid:
    the docstring of engine/jobs/admission.py gives the wider one it was measured on)."""
    from engine import models
    from engine.config import ModelConfig

    worst = 0.0
    for arch in models.architecture_names():
        for width in (0.25, 1.0):
            for batch in (1, 8):
                model = ModelConfig(architecture=arch, width_multiplier=width, padding="same")
                shape = (16, 16, 16, 1)
                estimate = models.describe(arch, shape, 2, model, batch)["estimated_training_bytes"]
                ratio = estimate / registry.first_layer_bytes(arch, shape, model, batch) / max(1.0, width)
                worst = max(worst, ratio)
    assert worst <= admission.ESTIMATE_PER_BOUND, worst
