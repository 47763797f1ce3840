"""The learning targets of the engine core, as slow benchmarks (`python -m pytest -m slow -s`).

They print their figures; the default test run skips them (pytest.ini: -m "not slow").
"""

from __future__ import annotations

import time

import pytest

from engine import validation
from engine.config import RunConfig
from engine.runs import RunStatus
from engine.store import open_store
from engine.training import execute_run


def _train(config: dict) -> tuple[dict, float]:
    store = open_store()
    run_id = store.create_run(validation.validate(RunConfig.from_dict(config)), status=RunStatus.RUNNING)
    started = time.perf_counter()
    summary = execute_run(store, run_id)
    return summary, time.perf_counter() - started


@pytest.mark.slow
def test_digits3d_tutorial3d_reaches_085_in_ten_epochs(lab_home):
    summary, seconds = _train({"data": {"dataset": "digits3d"}, "model": {"architecture": "tutorial3d"},
                               "training": {"epochs": 10}})
    print(f"\ndigits3d + tutorial3d, 10 epochs: {seconds:.1f} s, test accuracy {summary['test']['accuracy']:.3f}")
    assert summary["status"] == "finished"
    assert summary["test"]["accuracy"] >= 0.85


@pytest.mark.slow
def test_phantom_lesions_kerasio3d_learns_above_chance(lab_home):
    summary, seconds = _train({
        "data": {"dataset": "phantom_lesions"},
        "model": {"architecture": "kerasio3d", "width_multiplier": 0.25, "padding": "same", "batchnorm_momentum": 0.9},
        "training": {"epochs": 10, "batch_size": 16},
    })
    test = summary["test"]
    print(f"\nphantom_lesions 32^3 + kerasio3d x0.25, 10 epochs: {seconds:.1f} s, "
          f"test accuracy {test['accuracy']:.3f}, AUC {test['auc']:.3f}")
    assert summary["status"] == "finished"
    assert test["accuracy"] >= 0.7 and test["auc"] >= 0.8
