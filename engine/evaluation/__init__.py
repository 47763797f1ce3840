"""Evaluation of stored runs: confusion matrices, ROC/PR, per-class and per-sample tables, saliency.

Pure NumPy / scikit-learn over the predictions in the run store; importing this
package never imports TensorFlow (only ``saliency.compute_and_store`` does,
inside the function) or Streamlit. Names are loaded on first use, so
``engine.evaluation.cli`` (imported whenever the CLI builds its parser) does
not pull in scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "Curve": "metrics",
    "YoudenPoint": "metrics",
    "Evaluation": "report",
    "EvaluationError": "report",
    "SAMPLE_COLUMNS": "report",
    "SPLITS": "report",
    "class_distribution_by_epoch": "report",
    "class_names_of": "report",
    "evaluate_predictions": "report",
    "evaluate_run": "report",
    "filter_samples": "report",
    "positive_class_note": "report",
    "prediction_history": "report",
    "resolve_epoch": "report",
    "sample_table": "report",
    "stored_epochs": "report",
    "load_saliency": "saliency",
    "map_for_sample": "saliency",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.evaluation.metrics import Curve, YoudenPoint
    from engine.evaluation.report import (
        SAMPLE_COLUMNS,
        SPLITS,
        Evaluation,
        EvaluationError,
        class_distribution_by_epoch,
        class_names_of,
        evaluate_predictions,
        evaluate_run,
        filter_samples,
        positive_class_note,
        prediction_history,
        resolve_epoch,
        sample_table,
        stored_epochs,
    )
    from engine.evaluation.saliency import load_saliency, map_for_sample


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.evaluation.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
