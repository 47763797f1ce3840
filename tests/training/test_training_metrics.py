"""What training records for two-class and multi-class heads: macro precision / recall, the positive class."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from engine import evaluation, validation
from engine.config import RunConfig
from engine.runs import RunStatus, metric_title
from engine.store import open_store
from engine.training import execute_run

# Keras' thresholded precision / recall (micro-averaged on a softmax head) are no longer recorded.
THRESHOLDED = {"precision", "recall", "val_precision", "val_recall"}


def _train(data: dict, **model) -> tuple[object, int]:
    store = open_store()
    config = RunConfig.from_dict({
        "data": data,
        "model": {"architecture": "tutorial3d", "width_multiplier": 0.25, **model},
        "training": {"epochs": 1, "batch_size": 8},
    })
    run_id = store.create_run(validation.validate(config), status=RunStatus.RUNNING)
    assert execute_run(store, run_id)["status"] == RunStatus.FINISHED
    return store, run_id


def _check_macro(store, run_id: int) -> None:
    history = store.epoch_history(run_id)
    names = set(history[0])
    assert {"val_macro_precision", "val_macro_recall"} <= names and not names & THRESHOLDED
    val = store.get_predictions(run_id, "val", 1)
    predicted = val["probabilities"].argmax(axis=1)
    present = np.unique(val["labels"])
    assert history[0]["val_macro_recall"] == pytest.approx(skm.balanced_accuracy_score(val["labels"], predicted))
    assert history[0]["val_macro_precision"] == pytest.approx(
        skm.precision_score(val["labels"], predicted, labels=present, average="macro", zero_division=0))
    test = store.get_predictions(run_id, "test")
    run = store.get_run(run_id)
    assert run.test_metrics["macro_recall"] == pytest.approx(
        skm.balanced_accuracy_score(test["labels"], test["probabilities"].argmax(axis=1)))
    assert not set(run.test_metrics) & THRESHOLDED


def test_a_binary_sigmoid_run_records_macro_metrics_and_its_positive_class(lab_home):
    store, run_id = _train({"dataset": "shapes3d", "options": {"num_samples": 40, "size": 12, "mode": "location"}})
    _check_macro(store, run_id)
    run = store.get_run(run_id)
    # data.positive_class was empty: the worker recorded the dataset's (left / right say nothing: the second).
    assert run.config.data.positive_class == "right" and run.positive_class_chosen
    assert evaluation.evaluate_run(store, run_id, "test").positive_class == "right"


def test_a_chosen_positive_class_is_kept_and_used(lab_home):
    store, run_id = _train({"dataset": "shapes3d", "positive_class": "left",
                            "options": {"num_samples": 40, "size": 12, "mode": "location"}})
    run = store.get_run(run_id)
    assert run.positive_class == "left"
    result = evaluation.evaluate_run(store, run_id, "val", 1)
    assert result.positive_class == "left" and result.sensitivity == result.per_class[0]["recall"]


def test_a_softmax_run_records_macro_not_micro_thresholded_metrics(lab_home):
    store, run_id = _train({"dataset": "digits3d", "options": {"num_samples": 120, "size": 8},
                            "val_fraction": 0.25, "test_fraction": 0.25}, padding="same")
    _check_macro(store, run_id)
    assert store.get_run(run_id).positive_class is None  # ten classes: no positive class


def test_old_metric_names_stay_readable():
    assert metric_title("val_macro_recall") == "val_macro_recall" and metric_title("val_loss") == "val_loss"
    assert metric_title("val_recall").startswith("val_recall (Keras, thresholded")
    assert metric_title("precision").startswith("precision (Keras, thresholded")
