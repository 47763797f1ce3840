"""The learning-rate range test: the suggestion's arithmetic, and a tiny sweep recorded in the store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.doctor import lr_range


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    rates = lr_range.rates(1e-6, 1.0, 120)
    logs = np.log10(rates)
    # A loss that falls fastest around 1e-3 (a logistic step between 1e-4 and 1e-2) and blows up past 1e-1.
    loss = 1.0 - 0.8 / (1 + np.exp(-3 * (logs + 3))) + np.where(logs > -1, 10 ** (3 * (logs + 1)) - 1, 0)
    noisy = loss + np.random.default_rng(0).normal(0, 0.02, len(loss))
    suggestion = lr_range.suggest(rates, noisy)
    assert 3e-4 <= suggestion.suggested <= 3e-3
    assert 1e-2 <= suggestion.minimum <= 2e-1


def test_divergence_stops_the_sweep_and_a_too_short_sweep_is_refused():
    assert lr_range.diverged(lr_range.smooth([1.0] * 6 + [50.0] * 5))
    assert not lr_range.diverged(lr_range.smooth([1.0, 0.9, 0.8, 0.7, 0.6, 0.5]))
    assert lr_range.diverged(np.array([1.0, float("nan")]))
    with pytest.raises(ValueError, match="fewer than 3"):
        lr_range.suggest(np.array([1e-3, 1e-2]), np.array([1.0, 0.5]))


def test_a_tiny_sweep_is_recorded_in_the_store_and_stops_when_the_loss_diverges(lab_home):
    from engine import paths, validation
    from engine.config import RunConfig
    from engine.doctor.findings import CHECK_KIND, LR_FIND_FILE, LR_FIND_SUGGESTION
    from engine.runs import RunStatus
    from engine.store import open_store
    from engine.training.lr_find import find_learning_rate

    config = validation.validate(RunConfig.from_dict({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 8, "mode": "location"}},
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, "padding": "same"},
        "training": {"batch_size": 8, "optimizer": "sgd", "momentum": 0.0},
    }))
    store = open_store()
    result = find_learning_rate(store, config, min_lr=1e-4, max_lr=1e4, steps=40)
    run = store.get_run(result["run_id"])
    assert run.status == RunStatus.FINISHED and run.name.startswith("lr-find shapes3d")
    assert result["steps"] < 40  # plain SGD at rates up to 1e4 diverges before the end
    assert len(result["losses"]) == len(result["learning_rates"]) == result["steps"]
    assert result["learning_rates"][0] == pytest.approx(1e-4)
    stored = json.loads((paths.run_dir(run.id) / LR_FIND_FILE).read_text())
    assert stored["suggestion"] == result["suggestion"]
    row, = [r for r in store.get_metrics(run.id, kind=CHECK_KIND) if r["name"] == LR_FIND_SUGGESTION]
    assert row["value"] == pytest.approx(result["suggestion"]["suggested"])
