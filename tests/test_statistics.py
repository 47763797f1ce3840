"""engine.statistics: one definition of a summary over runs (mean, sample std, an interval within the
metric's range)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine import statistics


def test_an_interval_of_a_fraction_never_leaves_zero_to_one():
    from engine import statistics

    for values in ((0.99, 1.0, 0.9), (0.01, 0.0, 0.2), (0.5, 0.6, 0.55)):
        estimate = statistics.metric_estimate("val_accuracy", values)
        assert 0.0 <= estimate.low <= estimate.mean <= estimate.high <= 1.0
    assert statistics.metric_estimate("test AUC", (0.99, 1.0, 0.9)).clipped
    assert not statistics.metric_estimate("val_loss", (0.99, 1.0, 0.9)).clipped  # a loss has no upper bound
    assert statistics.metric_estimate("val_loss", (0.99, 1.0, 0.9)).high > 1.0
    assert statistics.metric_bounds("val_accuracy @ best") == (0.0, 1.0)


def test_the_estimate_is_the_sample_std_and_a_student_t_interval():
    values = (0.61, 0.66, 0.72)
    estimate = statistics.metric_estimate("val_loss", values)
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert estimate.std == pytest.approx(np.std(values, ddof=1))
    assert (estimate.low, estimate.high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    assert estimate.mean_std_text() == f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"
    assert statistics.estimate([0.5]).std is None and statistics.estimate([]) is None
