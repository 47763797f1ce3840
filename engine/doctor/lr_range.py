"""The learning-rate range test's arithmetic: the rates of the sweep and the suggested rate.

Pure NumPy, shared by the sweep (engine.training.lr_find) and the pages that
redraw a stored sweep. The method is Leslie Smith's range test as fastai runs
it: rates grow exponentially per batch from fresh weights, the loss is
smoothed with a bias-corrected moving average, the sweep stops once the loss
diverges, and the suggestion is the rate where the smoothed loss falls
fastest (on a log axis), before its minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The sweep's defaults: rates from DEFAULT_MIN_LR to DEFAULT_MAX_LR over at most DEFAULT_STEPS batches.
DEFAULT_MIN_LR = 1e-6
DEFAULT_MAX_LR = 1.0
DEFAULT_STEPS = 100
SMOOTHING = 0.9
SKIP_START = 5
# The sweep stops once the smoothed loss exceeds its minimum this many times.
DIVERGENCE_FACTOR = 4.0


def rates(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """The exponential sweep: ``steps`` rates from ``min_lr`` to ``max_lr``."""
    return np.geomspace(min_lr, max_lr, int(steps))


def smooth(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average with bias correction (the first values are not pulled towards 0)."""
    smoothed, average = [], 0.0
    for index, loss in enumerate(np.asarray(losses, dtype=float), start=1):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta**index))
    return np.asarray(smoothed)


def diverged(smoothed: np.ndarray) -> bool:
    """True when the latest smoothed loss is not finite or far above the best so far."""
    if len(smoothed) == 0:
        return False
    latest = smoothed[-1]
    return not np.isfinite(latest) or (len(smoothed) > 5 and latest > DIVERGENCE_FACTOR * np.nanmin(smoothed))


@dataclass(frozen=True)
class Suggestion:
    steepest: float  # where the smoothed loss falls fastest against log(rate)
    minimum: float  # the rate at the smoothed loss's minimum
    suggested: float  # the one the form offers

    def to_dict(self) -> dict[str, float]:
        return {"steepest": self.steepest, "minimum": self.minimum, "suggested": self.suggested,
                "minimum_over_10": self.minimum / 10}


def suggest(learning_rates: np.ndarray, losses: np.ndarray) -> Suggestion:
    """The suggested rate of a sweep: the centre of the decade of rates over which the smoothed loss
    falls fastest, before its minimum.

    When the descent is too short to read (fewer than 3 points before the
    minimum), the minimum / 10 rule is used.
    """
    learning_rates = np.asarray(learning_rates, dtype=float)
    smoothed = smooth(losses)
    finite = np.isfinite(smoothed)
    learning_rates, smoothed = learning_rates[finite], smoothed[finite]
    if len(smoothed) < 3:
        raise ValueError("the sweep recorded fewer than 3 finite losses; lower the starting rate")
    lowest = int(np.argmin(smoothed))
    minimum = float(learning_rates[lowest])
    # The first points are noisy (the average has seen few batches): skipped, as fastai does.
    start = max(SKIP_START, len(smoothed) // 10)
    if lowest - start < 3:
        return Suggestion(steepest=minimum / 10, minimum=minimum, suggested=minimum / 10)
    # The slope over a window of one decade of rates (a least-squares line), not between neighbours:
    # the batch losses are noisy, and the steepest neighbour-to-neighbour drop is often noise.
    logs = np.log10(learning_rates)
    window = max(3, int(round(len(logs) / max(1e-9, logs[-1] - logs[0]))))
    best_slope, steepest = np.inf, minimum / 10
    for first in range(start, max(start, lowest - window + 1) + 1):
        part = slice(first, min(first + window, lowest + 1))
        if part.stop - part.start < 3:
            continue
        slope = np.polyfit(logs[part], smoothed[part], 1)[0]
        if slope < best_slope:
            best_slope, steepest = slope, float(10 ** np.mean(logs[part]))
    return Suggestion(steepest=steepest, minimum=minimum, suggested=steepest)
