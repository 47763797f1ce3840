"""Whether a difference between two configurations is real: means, intervals and tests over folds or seeds.

Two numbers (0.81 vs 0.79) say little when each is the mean of three folds
that spread by ±0.05. These functions give the mean with a Student-t
confidence interval, and the difference of two means with its interval:
paired over folds when both configurations were trained on the same folds
(same seed, same k: fold i of one and fold i of the other saw the same
samples, so the fold-to-fold spread cancels), Welch's otherwise (e.g. seeds).
scipy does the t quantiles and the tests. Shared by the sweep summary, the CV
summary (CLI), the Runs page's group summary and the Compare page.

One definition of a summary over runs, used everywhere: the mean, the *sample*
standard deviation (ddof=1) and a Student-t interval. A t-interval is
symmetric, so for a metric that lives in [0, 1] (accuracy, AUC, sensitivity,
...) it can reach past 1 with three folds; it is then clipped to the range
and says so (``Estimate.clipped``), rather than showing an impossible 1.07.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# The confidence level of every interval the lab shows.
CONFIDENCE = 0.95
# Metrics that are fractions (their base name, without "val_" / "test_" / "test " prefixes): [0, 1].
UNIT_RANGE_METRICS = frozenset({
    "accuracy", "auc", "balanced_accuracy", "balanced accuracy", "sensitivity", "specificity", "precision",
    "recall", "f1", "macro_precision", "macro_recall", "pr_auc", "dice",
})
_PREFIXES = ("val_", "test_", "test ")
Bounds = tuple[float, float]


def metric_bounds(metric: str) -> Bounds | None:
    """(0, 1) for a metric that is a fraction ("val_accuracy", "test AUC", "val_accuracy @ best"); None
    for an unbounded one (a loss, a count, a time)."""
    name = metric.split(" @ ")[0].strip().lower()
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return (0.0, 1.0) if name in UNIT_RANGE_METRICS else None


@dataclass(frozen=True)
class Estimate:
    """The mean of n values with its sample standard deviation (ddof=1) and confidence interval (None when
    n < 2); ``clipped`` when the t-interval reached past the metric's range and was cut to it."""

    mean: float
    std: float | None
    n: int
    low: float | None
    high: float | None
    clipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mean_std_text(self, digits: int = 4) -> str:
        """"0.8123 ± 0.0210" (the mean alone for one value): the text every page and the CLI show."""
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def interval_text(self, digits: int = 4) -> str:
        """"0.7601–0.8645", with "(clipped to [0, 1])" when it was; "" without an interval."""
        if self.low is None or self.high is None:
            return ""
        return f"{self.low:.{digits}f}–{self.high:.{digits}f}" + (" (clipped to [0, 1])" if self.clipped else "")

    def describe(self, digits: int = 4) -> str:
        """"0.8123 ± 0.0210 (n=3, 95% CI 0.7601–0.8645)"."""
        if self.std is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean_std_text(digits)} (n={self.n}, {CONFIDENCE:.0%} CI {self.interval_text(digits)})"


@dataclass(frozen=True)
class Difference:
    """Mean of ``a`` minus mean of ``b``, with its interval and the p-value of "no difference"."""

    difference: float
    low: float | None
    high: float | None
    p_value: float | None
    paired: bool
    n_a: int
    n_b: int

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0 (at CONFIDENCE)."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}

    def describe(self, digits: int = 4) -> str:
        if self.low is None:
            return f"difference {self.difference:+.{digits}f} (too few values for an interval)"
        test = "paired t-test (same folds or seeds)" if self.paired else "Welch's t-test"
        verdict = "a real difference" if self.significant else "not distinguishable from no difference"
        return (f"difference {self.difference:+.{digits}f}, {CONFIDENCE:.0%} CI {self.low:+.{digits}f} to "
                f"{self.high:+.{digits}f}, p = {self.p_value:.3g} ({test}): {verdict}")


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def estimate(values: Sequence[float | None], confidence: float = CONFIDENCE,
             bounds: Bounds | None = None) -> Estimate | None:
    """Mean, sample standard deviation and t-interval of the finite values; None when there are none.

    With ``bounds`` (see :func:`metric_bounds`) the interval is clipped to them and marked ``clipped``.
    """
    from scipy import stats

    data = _clean(values)
    if len(data) == 0:
        return None
    mean = float(data.mean())
    if len(data) < 2:
        return Estimate(mean, None, 1, None, None)
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(data) - 1)) * std / math.sqrt(len(data))
    low, high, clipped = mean - half, mean + half, False
    if bounds is not None and (low < bounds[0] or high > bounds[1]):
        low, high, clipped = max(low, bounds[0]), min(high, bounds[1]), True
    return Estimate(mean, std, len(data), low, high, clipped)


def metric_estimate(metric: str, values: Sequence[float | None], confidence: float = CONFIDENCE
                    ) -> Estimate | None:
    """:func:`estimate` with the range of ``metric`` (a fraction's interval stays within [0, 1])."""
    return estimate(values, confidence, metric_bounds(metric))


def difference(
    a: Sequence[float | None], b: Sequence[float | None], *, paired: bool = False, confidence: float = CONFIDENCE
) -> Difference | None:
    """mean(a) - mean(b) with a t-interval and p-value; paired (fold i with fold i) when ``paired`` and the
    lengths match. None when either side has no value."""
    from scipy import stats

    if paired and len(a) == len(b):
        pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None
                 and math.isfinite(float(x)) and math.isfinite(float(y))]
        xs, ys = np.asarray([p[0] for p in pairs], float), np.asarray([p[1] for p in pairs], float)
        if len(pairs) == 0:
            return None
        deltas = xs - ys
        diff = float(deltas.mean())
        if len(pairs) < 2:
            return Difference(diff, None, None, None, True, len(pairs), len(pairs))
        spread = float(deltas.std(ddof=1))
        if spread == 0.0:
            return Difference(diff, diff, diff, 0.0 if diff else 1.0, True, len(pairs), len(pairs))
        half = float(stats.t.ppf(0.5 + confidence / 2, len(pairs) - 1)) * spread / math.sqrt(len(pairs))
        p_value = float(stats.ttest_rel(xs, ys).pvalue)
        return Difference(diff, diff - half, diff + half, p_value, True, len(pairs), len(pairs))
    xs, ys = _clean(a), _clean(b)
    if len(xs) == 0 or len(ys) == 0:
        return None
    diff = float(xs.mean() - ys.mean())
    if len(xs) < 2 or len(ys) < 2:
        return Difference(diff, None, None, None, False, len(xs), len(ys))
    va, vb = xs.var(ddof=1) / len(xs), ys.var(ddof=1) / len(ys)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Difference(diff, diff, diff, 0.0 if diff else 1.0, False, len(xs), len(ys))
    # Welch–Satterthwaite degrees of freedom.
    dof = (va + vb) ** 2 / (va**2 / (len(xs) - 1) + vb**2 / (len(ys) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    p_value = float(stats.ttest_ind(xs, ys, equal_var=False).pvalue)
    return Difference(diff, diff - half, diff + half, p_value, False, len(xs), len(ys))


__all__ = ["CONFIDENCE", "Bounds", "Difference", "Estimate", "UNIT_RANGE_METRICS", "difference", "estimate",
           "metric_bounds", "metric_estimate"]
