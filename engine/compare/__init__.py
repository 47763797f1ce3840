"""Comparing runs: filters, config differences, best epochs, groups and the summary table.

Everything here is plain data in, plain data out, so the Compare page, the
``compare`` command and the tests show the same numbers. The page draws what
these functions return; it computes nothing itself.

Conventions, each decided once here:
- A run's *best epoch* is the epoch whose monitored metric (``run.monitor``,
  e.g. ``val_loss``) is lowest for a loss and highest otherwise, read from the
  stored history (the first such epoch on ties, as Keras' checkpoint keeps
  the first). A *result metric* is taken at that epoch, or at the last epoch
  when asked (``at="last"``).
- A *group* is the runs that share one value of a config field (as W&B's
  "group by"). Its curves and table cells are the mean and the sample
  standard deviation (ddof=1) over its runs, and its result has a 95 %
  interval within the metric's range: ``engine.statistics.metric_estimate``,
  the same numbers as ``python -m engine group`` and the Runs page. A group
  of one run is shown as that run.
- Curves are downsampled for drawing only (``downsample``); tables always read
  the whole history.

The package: ``history`` (best and result epochs, curves), ``configs`` (config fields, differences,
filters), ``summary`` (groups, series and the summary tables of a ``Comparison``), ``curation`` (what a
person does to finished runs: tag, note, archive, delete) and ``cli`` (the ``compare``, ``tag``, ``note``,
``archive`` and ``delete`` commands). Import the comparison's names from ``engine.compare``.
"""

from engine.compare.configs import (
    PRESET_MARK, RUN_FIELDS, RunFilter, config_fields, config_table, differing_fields, effective_cell, effective_config,
    field_value, filter_runs, flat_config, preset_fields,
)
from engine.compare.history import (
    AXES, MAX_DRAWN_POINTS, RESULT_AT, VALIDATION_PREFIX, CompareError, History, best_epoch, curve, curve_metrics,
    default_result_metric, downsample, lower_is_better, mean_metric, metric_names, monitor_of, result_epoch, smooth,
    value_at,
)
from engine.compare.summary import (
    SUMMARY_NUMBERS, Comparison, Group, Series, confusion_epoch, curve_series, group_band, group_estimate, group_runs,
    group_stat, hyperparameter_frame, load, run_summary, summary_frame, test_evaluation,
)

__all__ = [
    "AXES", "Comparison", "CompareError", "Group", "RESULT_AT", "RunFilter",
    "Series", "best_epoch", "config_fields", "curve_series", "default_result_metric", "config_table", "confusion_epoch", "curve", "curve_metrics",
    "differing_fields", "downsample", "effective_cell", "effective_config", "PRESET_MARK",
    "preset_fields", "field_value", "filter_runs", "flat_config", "group_band", "group_runs",
    "group_estimate", "group_stat", "hyperparameter_frame", "load", "lower_is_better", "metric_names", "monitor_of",
    "result_epoch", "run_summary", "smooth", "summary_frame", "test_evaluation", "value_at",
    "History", "MAX_DRAWN_POINTS", "RUN_FIELDS", "SUMMARY_NUMBERS", "VALIDATION_PREFIX", "mean_metric",
]
