"""The Compare page's pieces: the URL-backed choices, the run picker, and the sections it renders.

Everything a copied link must reproduce lives in ``st.query_params``: the runs
(``runs=3,5,8``), the curve metric (``metric``), the training / validation
toggles (``curves``), the axis (``axis``), the smoothing (``smooth``), the
grouping (``group``), the result metric (``result``), best or last epoch
(``at``) and whether archived runs are listed (``archived``). The URL wins when
it changed since the page last wrote it (a shared link, a reload, the Runs
page's "Compare selected"); otherwise the widgets do. Numbers come from
engine.compare; figures from ui.figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from engine import compare, statistics
from engine.machine import execution
from engine.errors import LabError
from engine.runs import RunRecord, RunStatus, metric_title
from engine.store import RunStore
from ui import figures, run_admin, state, tables
from ui.inspect import confusion_figure
from ui.text import markdown_text, plotly_text

PICK_KEY = "_compare_table_pick"
SELECTED_KEY = "compare_selected"
NO_GROUP = ""
MAX_CONFUSION_RUNS = 4
AT_LABELS = {"best": "best epoch (by each run's monitored metric)", "last": "last epoch"}
AXIS_LABELS = {"epoch": "epoch", "time": "wall time"}
CURVE_PARTS = ("train", "val")


# ------------------------------------------------------------ URL plumbing
# One home for widget state and URL sync (ui/state.py); the short names keep this module's calls as they were.
_seed = state.seed_from_url
_write = state.write_url


# ------------------------------------------------------------ run picker
def show_archived() -> bool:
    _seed("compare_archived", "archived", lambda text: text == "1", False, lambda value: isinstance(value, bool))
    value = st.toggle("Show archived runs", key="compare_archived")
    _write("archived", "1" if value else "")
    return value


def selection(runs: Sequence[RunRecord]) -> list[int]:
    """The runs to compare: filters, a table to tick rows in, and the multiselect kept in ``?runs=``."""
    by_id = {run.id: run for run in runs}
    url_value = st.query_params.get("runs")
    if PICK_KEY in st.session_state:  # rows ticked in the table
        st.session_state[SELECTED_KEY] = [i for i in st.session_state.pop(PICK_KEY) if i in by_id]
    elif state.url_changed(SELECTED_KEY, "runs", url_value):
        st.session_state[SELECTED_KEY] = [i for i in tables.parse_run_ids(url_value) if i in by_id]
    else:
        st.session_state[SELECTED_KEY] = [i for i in st.session_state[SELECTED_KEY] if i in by_id]
    visible = compare.filter_runs(runs, _filters(runs))
    _picker_table(visible, st.session_state[SELECTED_KEY])
    selected = st.multiselect(
        "Runs to compare", list(by_id), key=SELECTED_KEY, format_func=lambda i: by_id[i].label,
        placeholder="Tick runs in the table or choose them here",
    )
    st.caption(f"{len(visible)} of {len(runs)} runs shown · {len(selected)} selected")
    _write("runs", tables.format_run_ids(selected))
    return selected


def _filters(runs: Sequence[RunRecord]) -> compare.RunFilter:
    with st.expander("Filter the table", icon=":material/filter_list:"):
        first, second, third = st.columns(3)
        name = first.text_input("Name contains", key="compare_f_name")
        datasets = second.multiselect("Dataset", sorted({r.dataset for r in runs}), key="compare_f_dataset")
        architectures = third.multiselect("Architecture", sorted({r.architecture for r in runs}), key="compare_f_arch")
        statuses = first.multiselect("Status", list(RunStatus), key="compare_f_status", format_func=lambda s: s.label)
        tags = second.multiselect("Tags (any of)", sorted({t for r in runs for t in r.tags}), key="compare_f_tags")
        dates = third.date_input("Created between", value=(), key="compare_f_dates")
        field = first.selectbox("Config field", ["", *compare.config_fields(runs)], key="compare_f_field",
                                format_func=lambda f: f or "(any)")
        value = second.text_input("equals", key="compare_f_value", disabled=not field,
                                  help="numbers compare as numbers (0.001 = 1e-3); text ignores case")
    start, end = (list(dates) + [None, None])[:2] if isinstance(dates, (list, tuple)) else (dates, None)
    return compare.RunFilter(
        name=name, datasets=tuple(datasets), architectures=tuple(architectures), statuses=tuple(statuses),
        tags=tuple(tags), field=field, value=value,
        created_after=_timestamp(start), created_before=_timestamp(end, end_of_day=True),
    )


def _timestamp(day: dt.date | None, end_of_day: bool = False) -> float | None:
    if day is None:
        return None
    moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
    return moment.timestamp()


def selection_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run for the picker: identity, tags, data, model, key knobs, result."""
    rows = []
    for run in runs:
        training = run.config.training
        rows.append({
            "id": run.id, "name": run.name, "status": run.status.badge, "tags": ", ".join(run.tags),
            "dataset": run.dataset, "architecture": run.architecture,
            "initial lr": training.learning_rate, "batch": training.batch_size, "seed": training.seed,
            "epoch": f"{run.epochs_done}/{run.epochs_total}", "best": tables.best_text(run),
            "test acc": run.test_metrics.get("accuracy"),
            "created": dt.datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M"),
        })
    return pd.DataFrame(rows, columns=["id", "name", "status", "tags", "dataset", "architecture", "initial lr",
                                       "batch", "seed", "epoch", "best", "test acc", "created"])


def _picker_table(visible: Sequence[RunRecord], selected: Sequence[int]) -> None:
    ids = [run.id for run in visible]
    # A new key whenever the rows or the selection change, so the ticks start from the selection.
    key = "compare_table_" + str(abs(hash((tuple(ids), tuple(selected)))))
    frame = selection_frame(visible)
    event = st.dataframe(
        frame.style.map(tables.status_style, subset=["status"]) if len(frame) else frame,
        key=key, hide_index=True, height=min(38 + 35 * len(frame), 380),
        column_config={
            "id": st.column_config.NumberColumn("id", width="small"),
            "name": st.column_config.TextColumn("name", width="medium"),
            "tags": st.column_config.TextColumn("tags", width="medium"),
            "initial lr": st.column_config.NumberColumn("initial lr", format="%.0e"),
            "test acc": st.column_config.NumberColumn("test acc", format="%.3f"),
        },
        on_select="rerun", selection_mode="multi-row",
        selection_default={"selection": {"rows": [ids.index(i) for i in selected if i in ids]}},
    )
    ticked = [ids[row] for row in event.selection.rows if row < len(ids)]
    shown_selected = [i for i in selected if i in ids]
    if set(ticked) != set(shown_selected):
        kept = [i for i in selected if i not in ids or i in ticked]
        st.session_state[PICK_KEY] = kept + [i for i in ticked if i not in kept]
        st.rerun()


# ------------------------------------------------------------ view options
@dataclass(frozen=True)
class ViewOptions:
    metric: str
    training: bool
    validation: bool
    axis: str
    smoothing: float
    group_by: str | None
    result_metric: str
    at: str

    @property
    def result_title(self) -> str:
        return f"{self.result_metric} @ {self.at}"


def view_options(comparison: compare.Comparison) -> ViewOptions:
    """The curve metric, toggles, axis, smoothing, grouping and result choice, each kept in the URL."""
    bases = compare.curve_metrics(comparison.histories)
    names = compare.metric_names(comparison.histories)
    fields = compare.config_fields(comparison.runs)
    default_result = compare.default_result_metric(comparison.histories, comparison.runs)
    _seed("compare_metric", "metric", str, bases[0], lambda v: v in bases)
    _seed("compare_curves", "curves", lambda t: [p for p in t.split(",") if p in CURVE_PARTS], list(CURVE_PARTS),
          lambda v: isinstance(v, list))
    _seed("compare_axis", "axis", str, "epoch", lambda v: v in compare.AXES)
    _seed("compare_smooth", "smooth", float, 0.0, lambda v: isinstance(v, float) and 0.0 <= v <= 0.95)
    _seed("compare_group", "group", str, NO_GROUP, lambda v: v == NO_GROUP or v in fields)
    _seed("compare_result", "result", str, default_result, lambda v: v in names)
    _seed("compare_at", "at", str, "best", lambda v: v in compare.RESULT_AT)

    first, second, third, fourth = st.columns([3, 3, 2, 3])
    metric = first.selectbox("Curve metric", bases, key="compare_metric", format_func=metric_title)
    curves = second.multiselect("Curves", list(CURVE_PARTS), key="compare_curves",
                                format_func=lambda p: {"train": "training", "val": "validation"}[p])
    axis = third.radio("x axis", compare.AXES, key="compare_axis", format_func=AXIS_LABELS.get, horizontal=True)
    smoothing = fourth.slider("Smoothing (drawing only)", 0.0, 0.95, step=0.05, key="compare_smooth")
    first, second, third = st.columns([3, 3, 5])
    group = first.selectbox("Group by", [NO_GROUP, *fields], key="compare_group",
                            format_func=lambda f: f or "(no grouping)",
                            help="runs that share this config field's value: mean ± std")
    result = second.selectbox("Result metric", names, key="compare_result", format_func=metric_title,
                              help="for the summary and the hyperparameter views")
    at = third.radio("Result taken at", compare.RESULT_AT, key="compare_at", format_func=AT_LABELS.get,
                     horizontal=True)
    for param, text in (("metric", metric), ("curves", ",".join(curves) or "none"), ("axis", axis),
                        ("smooth", f"{smoothing:g}" if smoothing else ""), ("group", group), ("result", result),
                        ("at", at)):
        _write(param, text)
    return ViewOptions(metric, "train" in curves, "val" in curves, axis, float(smoothing), group or None, result, at)


# ------------------------------------------------------------ sections
def render(store: RunStore, comparison: compare.Comparison, options: ViewOptions, *, editable: bool = True) -> None:
    """The sections; ``editable=False`` (a read-only share link) leaves out the tags / notes / delete editor."""
    colors = figures.run_colors(comparison.run_ids)
    _curves(comparison, options, colors)
    _summary(comparison, options)
    _config(comparison)
    _hyperparameters(comparison, options, colors)
    _confusion(store, comparison, options)
    if not editable:
        return
    st.subheader("Tags, notes, archive, delete")
    run_admin.editor_for_one_of(store, comparison.runs, "compare")


def _curves(comparison: compare.Comparison, options: ViewOptions, colors: dict[int, str]) -> None:
    if not (options.training or options.validation):
        st.info("Choose training, validation or both curves above.")
        return
    series = compare.curve_series(
        comparison, options.metric, training=options.training, validation=options.validation, axis=options.axis,
        smoothing=options.smoothing, group_by=options.group_by,
    )
    if not series:
        st.info(f"None of these runs recorded {markdown_text(options.metric)} for the chosen curves yet.")
        return
    st.plotly_chart(figures.curves_figure([(options.metric, series)], colors, options.axis, height=420), key="compare_curves_chart")


SUMMARY_FORMATS = {"runs": "{:.0f}", "parameters": "{:,.0f}", "epochs": "{:.0f}", "best epoch": "{:.0f}", "wall time (s)": "{:.1f}",
                   "samples/s": "{:.1f}"}


def summary_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The summary as text cells: numbers rounded, a group's "mean ± std" in one cell, and next to the
    result its interval ("95% CI", clipped to the metric's range and saying so)."""
    # The std / interval columns go into their mean's cells; the group's value is in its label.
    extra = (" std", " low", " high", " clipped")
    shown = frame.drop(columns=[c for c in frame.columns if c.endswith(extra) or c in ("run id", "group")])
    out = pd.DataFrame(index=shown.index)
    for column in shown.columns:
        fmt = SUMMARY_FORMATS.get(column, "{:.4f}")
        cells = []
        for index, value in shown[column].items():
            std = frame[f"{column} std"][index] if f"{column} std" in frame.columns else None
            cells.append(_number(value, fmt) + (f" ± {_number(std, fmt)}" if pd.notna(std) and pd.notna(value)
                                                and not isinstance(value, str) else ""))
        out[column] = cells
        if f"{column} low" in frame.columns:
            out[INTERVAL_COLUMN] = [_interval(frame, column, index) for index in shown.index]
    # What a reader compares comes first (the result and its interval); the run's status and monitor,
    # which say how to read the row, go last, so the table's first screenful holds the numbers.
    last = [column for column in ("status", "monitor") if column in out.columns]
    first = [column for column in out.columns if column in ("run", "runs")]
    results = [column for column in out.columns if " @ " in column or column == INTERVAL_COLUMN]
    middle = [column for column in out.columns if column not in (*first, *results, *last)]
    return out[first + results + middle + last]


INTERVAL_COLUMN = f"{statistics.CONFIDENCE:.0%} CI"


def _interval(frame: pd.DataFrame, column: str, index: Any) -> str:
    low, high = frame[f"{column} low"][index], frame[f"{column} high"][index]
    if pd.isna(low) or pd.isna(high):
        return ""
    estimate = statistics.Estimate(float(frame[column][index]), float(frame[f"{column} std"][index]),
                                   int(frame["runs"][index]), float(low), float(high),
                                   bool(frame[f"{column} clipped"][index]))
    return estimate.interval_text()


def _number(value: Any, fmt: str) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    return value if isinstance(value, str) else fmt.format(value)


def _summary(comparison: compare.Comparison, options: ViewOptions) -> None:
    st.subheader("Summary")
    frame = compare.summary_frame(comparison, options.result_metric, options.at, options.group_by)
    st.caption(
        f"Result: {markdown_text(options.result_metric)} at each run's {AT_LABELS[options.at]}. "
        "Test metrics: the best weights on the test split, as recorded. "
        + ("Groups of two or more runs: mean ± sample std over their runs, and the result's "
           f"{INTERVAL_COLUMN} (Student t; a fraction's interval is clipped to [0, 1] and says so)."
           if options.group_by else "")
    )
    st.dataframe(summary_display(frame), key="compare_summary", hide_index=True,
                 column_config={"run": st.column_config.TextColumn("run", width="medium", pinned=True)})
    st.download_button("Download CSV", frame.to_csv(index=False), file_name="compare-summary.csv", mime="text/csv",
                       key="compare_csv", icon=":material/download:")


def _config(comparison: compare.Comparison) -> None:
    st.subheader("Configuration")
    only = st.toggle("Only what differs", value=True, key="compare_only_diff")
    table, differing = compare.config_table(comparison.runs, only_differences=only)
    if table.empty:
        st.info("The selected runs have the same configuration.")
        return
    highlight = "background-color: #fef3c7; font-weight: 600"
    styled = table.style.apply(lambda row: [highlight if row.name in differing else ""] * len(row), axis=1)
    st.dataframe(styled, key="compare_config", height=min(38 + 35 * len(table), 600))
    st.caption("How each run executed (chosen by its worker for its machine; training.precision / training.xla "
               "above are what was asked)")
    st.dataframe(pd.DataFrame(execution.describe_runs([(run.id, run.label) for run in comparison.runs])),
                 key="compare_execution")


def _hyperparameters(comparison: compare.Comparison, options: ViewOptions, colors: dict[int, str]) -> None:
    st.subheader("Hyperparameters")
    frame = compare.hyperparameter_frame(comparison, options.result_metric, options.at)
    fields = [c for c in frame.columns if c not in ("run id", "run", options.result_metric)]
    st.caption(f"Each run's {markdown_text(options.result_metric)} at its {AT_LABELS[options.at]}.")
    if not fields:
        st.info("The selected runs share every config field, so there is no hyperparameter to compare.")
        return
    if frame[options.result_metric].notna().sum() == 0:
        st.info(f"No selected run has a value of {markdown_text(options.result_metric)} yet.")
        return
    left, right = st.columns([3, 2])
    with left:
        rows = frame[frame[options.result_metric].notna()]
        st.plotly_chart(figures.parallel_figure({name: list(rows[name]) for name in fields}, options.result_title,
                                                list(rows[options.result_metric]),
                                                lower_is_better=compare.lower_is_better(options.result_metric)),
                        key="compare_parallel")
    with right:
        field = st.selectbox("Field", fields, key="compare_scatter_field")
        st.plotly_chart(figures.scatter_figure(frame, field, options.result_metric, options.result_title,
                                                       colors), key="compare_scatter")


def _confusion(store: RunStore, comparison: compare.Comparison, options: ViewOptions) -> None:
    from engine.evaluation import report  # scikit-learn, loaded when matrices are drawn

    st.subheader("Confusion matrices")
    ids = comparison.run_ids
    if len(ids) < 2:
        return
    labels = {run.id: run.label for run in comparison.runs}
    if "compare_cm_runs" not in st.session_state or not set(st.session_state["compare_cm_runs"]) <= set(ids):
        st.session_state["compare_cm_runs"] = ids[:2]
    chosen = st.multiselect("Runs (two to four)", ids, key="compare_cm_runs", max_selections=MAX_CONFUSION_RUNS,
                            format_func=labels.get)
    st.caption(f"Validation predictions at each run's {AT_LABELS[options.at]}.")
    if len(chosen) < 2:
        st.info("Choose two to four runs to see their confusion matrices next to each other.")
        return
    for column, run_id in zip(st.columns(len(chosen)), chosen):
        run = comparison.run(run_id)
        epoch = compare.confusion_epoch(comparison, run, options.at)
        with column:
            try:
                result = report.evaluate_run(store, run_id, "val", epoch)
            except LabError as e:
                st.warning(str(e))
                continue
            title = plotly_text(f"{run.label} · epoch {result.epoch}")
            st.plotly_chart(confusion_figure(result.counts, result.normalized,
                                             [plotly_text(n) for n in result.class_names], title, height=380),
                            key=f"compare_cm_{run_id}")


__all__ = ["ViewOptions", "render", "selection", "selection_frame", "show_archived", "summary_display",
           "view_options"]
