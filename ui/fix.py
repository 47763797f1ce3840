"""The doctor's fixes on the pages: an Apply action per finding and the verdict of a paired comparison.

``apply_action`` sits inside a finding's expander (ui/doctor.findings_panel): it
shows the remedy's changes, launches the original and the fixed config as pairs
over the same seeds or folds (engine.remedies.pairing.launch_fix) and remembers
the group. ``results_panel`` shows the fixes launched from a run, each with the
paired difference of the result metric and its 95 % interval and the verdict
that engine.remedies.pairing.fix_report computes (the CLI prints the same).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from engine import remedies
from engine.doctor import Finding
from engine.errors import ConfigError, LabError
from engine.remedies import pairing
from engine.runs import RunRecord
from engine.store import RunStore
from ui import access
from ui.text import markdown_text

RESULTS_REFRESH_S = 5  # how often an unfinished comparison looks for newly finished pairs
_VERDICT_COLORS: dict[str, Any] = {pairing.HELPED: "green", pairing.HURT: "red", pairing.UNCLEAR: "orange",
                                   pairing.PENDING: "gray"}
_CHOSEN_GROUP = "inspect_fix_group"


def _changes_table(changes: Any) -> list[dict[str, str]]:
    return [{"field": change.field, "now": str(change.old), "fixed": str(change.new), "why": change.reason}
            for change in changes]


def apply_action(store: RunStore, run: RunRecord, finding: Finding, key: str) -> None:
    """The finding's remedies, a preview of what changes, and an Apply button that launches the pairs."""
    choices = remedies.remedies_for(finding.id)
    if not choices:
        return
    st.markdown("**Apply a fix and verify it**")
    titles = {remedy.id: remedy.title for remedy in choices}
    remedy_id = str(st.selectbox("Remedy", list(titles), format_func=lambda name: titles[name],
                                 key=f"{key}_remedy"))
    remedy = remedies.REMEDIES[remedy_id]
    if remedy.range_test:
        st.caption("Applying runs the learning-rate range test on this run's config first (tens of seconds); "
                   "the fixed config takes its suggested rate.")
    else:
        try:
            preview = remedies.prescribe(run.config, finding, remedy_id)
            st.dataframe(_changes_table(preview.changes), hide_index=True, key=f"{key}_changes")
        except ConfigError as error:
            st.info(markdown_text(error))
            return
    columns = st.columns([2, 1, 2])
    folds_default = run.config.data.folds
    how = columns[0].radio("Pairs over", ["seeds", "folds"], index=1 if folds_default else 0, horizontal=True,
                           key=f"{key}_over")
    count = columns[1].number_input("How many", min_value=1, max_value=20,
                                    value=folds_default or pairing.DEFAULT_SEEDS, step=1, key=f"{key}_count")
    columns[2].caption("The original config and the fixed one train on the same seeds (or folds), so their "
                       "difference is paired; 3 or more pairs give an interval.")
    if st.button("Apply", key=f"{key}_apply", type="primary", icon=":material/healing:",
                 disabled=not access.can_change(), help=None if access.can_change() else access.refusal()):
        try:
            with st.spinner("Queueing the paired runs..."):
                launched = pairing.launch_fix(
                    run.id, finding.id, remedy=remedy_id, finding=finding, store=store,
                    seeds=int(count) if how == "seeds" else None, folds=int(count) if how == "folds" else None,
                    **access.engine_args(),
                )
        except LabError as error:
            st.error(markdown_text(error))
            return
        st.session_state[_CHOSEN_GROUP] = launched.group
        st.success(f"Queued {len(launched.pairs)} pairs as {launched.group}: the comparison is under "
                   "Fixes below.")


def difference_figure(report: pairing.FixReport) -> go.Figure:
    """Each pair's difference (fixed minus original) as a dot, their mean with the 95 % interval, and 0."""
    rows = [row for row in report.pairs if row["difference"] is not None]
    figure = go.Figure(go.Scatter(
        x=[row["difference"] for row in rows], y=[row["key"] for row in rows], mode="markers",
        marker=dict(size=10, color="#1f77b4"), name="pair (fixed minus original)",
    ))
    difference = report.difference
    if difference is not None and difference.low is not None and difference.high is not None:
        figure.add_trace(go.Scatter(
            x=[difference.difference], y=["mean"], mode="markers", marker=dict(size=14, color="#d62728"),
            error_x=dict(type="data", symmetric=False, array=[difference.high - difference.difference],
                         arrayminus=[difference.difference - difference.low]),
            name="mean difference, 95% interval",
        ))
    figure.add_vline(x=0, line=dict(color="#6b7280", dash="dash"), annotation_text="no change",
                     annotation_position="top left")
    figure.update_xaxes(title=f"{report.metric}: fixed minus original", zeroline=False)
    figure.update_yaxes(type="category", autorange="reversed")
    figure.update_layout(height=120 + 36 * (len(rows) + 1), margin=dict(t=40, b=10, l=10, r=10),
                         legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    return figure


def report_view(store: RunStore, group: str, key: str) -> None:
    """One paired comparison: the verdict, the difference and its interval, each pair's values."""
    try:
        report = pairing.fix_report(group, store=store)
    except LabError as error:
        st.warning(markdown_text(error))
        return
    record = report.record or {}
    if record:
        st.caption(markdown_text(f"{group}: run #{record['run_id']}, finding '{record['finding']['id']}', remedy "
                                 f"'{record['remedy_title']}', pairs over {record['repetition']}"))
    st.badge(report.verdict, color=_VERDICT_COLORS.get(report.verdict, "gray"), icon=":material/balance:")
    st.markdown(markdown_text(report.sentence))
    if report.original is not None and report.fixed is not None:
        metric_columns = st.columns(3)
        metric_columns[0].metric(f"original {report.metric}", f"{report.original.mean:.4f}",
                                 help=report.original.describe())
        metric_columns[1].metric(f"fixed {report.metric}", f"{report.fixed.mean:.4f}", help=report.fixed.describe())
        if report.difference is not None:
            interval = ("no interval (one pair)" if report.difference.low is None else
                        f"95% CI {report.difference.low:+.4f} to {report.difference.high:+.4f}")
            metric_columns[2].metric("difference", f"{report.difference.difference:+.4f}", interval,
                                     delta_color="off", delta_arrow="off")
        st.plotly_chart(difference_figure(report), key=f"{key}_figure", config={"displayModeBar": False})
    if record.get("changes"):
        st.dataframe([{"field": c["field"], "original": str(c["old"]), "fixed": str(c["new"])}
                      for c in record["changes"]], hide_index=True, key=f"{key}_changes")
    st.dataframe([{"pair": row["key"], "original run": f"#{row['original_run']}", "fixed run": f"#{row['fixed_run']}",
                   "original": row["original"], "fixed": row["fixed"], "difference": row["difference"],
                   "status": row["status"]} for row in report.pairs],
                 hide_index=True, key=f"{key}_pairs",
                 column_config={name: st.column_config.NumberColumn(format="%.4f")
                                for name in ("original", "fixed", "difference")})


def results_panel(store: RunStore, run_id: int, key: str) -> None:
    """The fixes launched from run ``run_id``, the chosen one's verdict (refreshing until every pair ended)."""
    records = pairing.list_records(run_id)
    if not records:
        st.caption("No fix of this run has been launched yet: open a finding above and press Apply.")
        return
    groups = [record["group"] for record in records]
    labels = {record["group"]: f"{record['group']}: {record['finding']['id']} by {record['remedy']}, "
                               f"{len(record['pairs'])} pairs over {record['repetition']}" for record in records}
    if st.session_state.get(_CHOSEN_GROUP) not in groups:
        st.session_state[_CHOSEN_GROUP] = groups[0]
    group = str(st.selectbox("Fix", groups, format_func=lambda name: labels[name], key=_CHOSEN_GROUP))
    pending = any(run.status.is_active for run in store.list_runs(group=group))

    @st.fragment(run_every=RESULTS_REFRESH_S if pending else None)
    def live() -> None:
        with st.container(border=True, key=key):
            report_view(store, group, key)

    live()
