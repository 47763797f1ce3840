"""The Runs page's pieces: the runs table, the URL-backed selection and the live panel."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import compare, jobs, statistics
from engine.machine import execution
from engine.errors import LabError
from engine.runs import RunRecord, RunStatus
from engine.store import RunStore
from ui import doctor as doctor_ui
from ui import access, figures, run_admin, state, tables
from ui.live import MetricCache
from ui.text import markdown_text

# Seconds between live refreshes while a selected run is queued or running.
LIVE_REFRESH_S = 1.0
# Seconds between refreshes of the runs table while any run is active: the live panel's, so the table's
# "epoch" column never shows an older read than the run card beside it (at 3 s it lagged by an epoch).
TABLE_REFRESH_S = LIVE_REFRESH_S
# Worker log lines shown per run.
LOG_LINES = 50
QUERY_KEY = "runs"
PICK_KEY = "_runs_table_pick"


@dataclass(frozen=True)
class Listing:
    """Which runs the page lists: archived ones or not (None: all), lr-find range tests or not."""

    archived: bool | None = False
    lr_find: bool = False

    def runs(self, store: RunStore) -> list[RunRecord]:
        return [run for run in store.list_runs(archived=self.archived) if self.lr_find or not run.is_lr_find]


def runs_table(store: RunStore, runs: Sequence[RunRecord], selected: Sequence[int],
               listing: Listing = Listing()) -> None:
    """Draw the table (with the selected runs ticked); refreshes itself while any run is active.

    Ticking or unticking rows changes the selection: the table hands the new ids
    to :func:`selection` through ``st.session_state[PICK_KEY]`` and reruns the page.
    """
    active = any(run.status.is_active for run in runs)
    statuses = {run.id: run.status for run in runs}
    ids = [run.id for run in runs]
    # A new key whenever the rows or the selection change, so the ticks start from the selection.
    key = "runs_table_" + str(abs(hash((tuple(ids), tuple(selected)))))

    @st.fragment(run_every=TABLE_REFRESH_S if active else None)
    def table() -> None:
        fresh = runs
        if st.session_state.get("_runs_table_drawn"):
            jobs.reconcile(store)
            fresh = listing.runs(store)
            if {run.id: run.status for run in fresh} != statuses:
                st.rerun(scope="app")  # a run started, ended or appeared: redraw buttons and panels too
        st.session_state["_runs_table_drawn"] = True
        event = st.dataframe(
            tables.styled_runs_frame(fresh),
            key=key,
            hide_index=True,
            height=min(38 + 35 * len(fresh), 420),
            column_config={
                "id": st.column_config.NumberColumn("id", width="small"),
                "initial lr": st.column_config.NumberColumn("initial lr", format="%.0e"),
            },
            on_select="rerun",
            selection_mode="multi-row",
            selection_default={"selection": {"rows": [ids.index(i) for i in selected if i in ids]}},
        )
        ticked = [ids[row] for row in event.selection.rows if row < len(ids)]
        if set(ticked) != set(selected):
            # Keep the multiselect's order for runs already shown; newly ticked runs go last.
            st.session_state[PICK_KEY] = [i for i in selected if i in ticked] + [i for i in ticked if i not in selected]
            st.rerun(scope="app")

    st.session_state["_runs_table_drawn"] = False
    table()


def group_summaries(store: RunStore, runs: Sequence[RunRecord]) -> None:
    """Each fold / seed group among the listed runs: its metrics' mean ± sample std and interval, the same
    numbers as ``python -m engine group`` and Compare's "group by" (engine.sweeps.summary.group_rows)."""
    from engine.sweeps import summary

    rows = summary.group_rows(store, runs)
    if not rows:
        return
    with st.expander(f"Cross-validation and seed groups ({len({(r['group'], r['trial']) for r in rows})})",
                     expanded=True, icon=":material/functions:"):
        st.dataframe(group_frame(rows), key="runs_groups", hide_index=True)
        st.caption(f"Each metric at each run's best epoch: mean ± sample std over the group's runs, and its "
                   f"{statistics.CONFIDENCE:.0%} interval (Student t; a fraction's interval is clipped to [0, 1] "
                   "and says so).")


def group_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The group summary as text cells (as ``python -m engine group`` prints them)."""
    interval = f"{statistics.CONFIDENCE:.0%} CI"
    return pd.DataFrame([{
        "group": row["group"] + (f" trial {row['trial']}" if row["trial"] is not None else ""),
        "runs": f"{row['completed']}/{row['runs']} {RunStatus.FINISHED.label}",
        "metric": row["metric"],
        "mean ± std": row["estimate"].mean_std_text(),
        interval: row["estimate"].interval_text(),
    } for row in rows], columns=["group", "runs", "metric", "mean ± std", interval])


def selection(runs: Sequence[RunRecord]) -> list[int]:
    """The multiselect of runs to show, kept in the URL as ``?runs=1,2``; ticking table rows sets it too.

    The URL wins when it changed since we last wrote it (a shared link, a
    reload, a switch from the Train page); otherwise the widget does.
    """
    by_id = {run.id: run for run in runs}
    url_value = st.query_params.get(QUERY_KEY)  # None when absent, as state.write_url remembers an empty value
    if PICK_KEY in st.session_state:  # rows ticked in the table
        st.session_state["runs_selected"] = [i for i in st.session_state.pop(PICK_KEY) if i in by_id]
    elif state.url_changed("runs_selected", QUERY_KEY, url_value):
        ids = [i for i in tables.parse_run_ids(url_value or "") if i in by_id]
        if not ids and not url_value and runs:
            ids = [runs[0].id]  # nothing asked for: show the newest run
        st.session_state["runs_selected"] = ids
    selected = st.multiselect(
        "Runs to show", list(by_id), key="runs_selected", format_func=lambda i: by_id[i].label,
        placeholder="Choose runs to compare their curves",
    )
    state.write_url(QUERY_KEY, tables.format_run_ids(selected))
    return selected


def compare_link(selected: Sequence[int]) -> None:
    """"Compare selected": the Compare page with this selection (``?runs=`` carried over)."""
    st.page_link("app_pages/compare.py", label=f"Compare selected ({len(selected)})", icon=":material/compare_arrows:",
                 query_params={"runs": tables.format_run_ids(selected)})


def live_panel(store: RunStore, run_ids: Sequence[int], initial: dict[int, RunStatus]) -> None:
    """Curves and per-run status for the selection; reruns every second while one is active."""
    active = any(status.is_active for status in initial.values())

    @st.fragment(run_every=LIVE_REFRESH_S if active else None)
    def panel() -> None:
        runs = {run.id: run for run in store.list_runs(ids=list(run_ids))}
        ordered = [runs[i] for i in run_ids if i in runs]
        if any(runs[i].status != initial.get(i) for i in runs):
            st.rerun(scope="app")
        cache: MetricCache = st.session_state.setdefault("metric_cache", MetricCache())
        for run in ordered:
            cache.drop_stale(run.id, run.epochs_done)
        cache.refresh(store, [run.id for run in ordered])
        _curves(cache, ordered)
        for run in ordered:
            _run_status(store, run, cache)

    panel()


def _curves(cache: MetricCache, runs: Sequence[RunRecord]) -> None:
    # Building Plotly figures is the costly part of a refresh (about 50 ms each): a figure is built
    # once per content, whichever session asks, and only when rows of its kind arrived.
    labels = tuple((run.id, run.label) for run in runs)  # the figure builders escape them for Plotly
    histories = tuple(_frozen_rows(cache.get(run.id).history(), skip="_wall_time") for run in runs)
    batches = tuple(_frozen_rows(cache.get(run.id).batches) for run in runs)
    curves = _shared_figure(live_curves_figure, labels, histories) if any(histories) else None
    batch_loss = _shared_figure(figures.batch_loss_figure, labels, batches) if any(batches) else None
    if curves is not None:
        st.plotly_chart(curves, key="runs_curves")
    else:
        st.info("No epoch has finished yet; the curves appear here as soon as one does.", icon=":material/hourglass_top:")
    if batch_loss is not None:
        st.plotly_chart(batch_loss, key="runs_batch_loss")


def live_curves_figure(histories: Mapping[int, compare.History], labels: Mapping[int, str]) -> go.Figure:
    """Loss and accuracy per epoch of each run (``figures.CURVE_PANELS``), training and validation."""
    panels = []
    for title, metric in figures.CURVE_PANELS:
        lines = []
        for run_id, history in histories.items():
            for name in (metric, compare.VALIDATION_PREFIX + metric):
                x, y, _ = compare.curve(history, name)
                if len(x):
                    lines.append(compare.Series(labels.get(run_id, f"run {run_id}"), name, (run_id,), x, y))
        panels.append((title, lines))
    return figures.curves_figure(panels, figures.run_colors(list(histories)), fixed_ranges=True)


def _frozen_rows(rows: Sequence[dict], skip: str = "") -> tuple:
    """Metric rows as a hashable value (the key of the shared figures)."""
    return tuple(tuple(sorted((k, v) for k, v in row.items() if k != skip)) for row in rows)


# Figures shared by every session of this server: the same builder and rows give the same figure,
# which st.plotly_chart only reads (it serialises a copy). Enough entries for every live selection.
@functools.lru_cache(maxsize=64)
def _shared_figure(build, labels: tuple, rows: tuple):
    return build({run_id: [dict(row) for row in run_rows] for (run_id, _), run_rows in zip(labels, rows)},
                 dict(labels))


def _run_status(store: RunStore, run: RunRecord, cache: MetricCache) -> None:
    run_id, status = run.id, run.status
    with st.container(border=True, key=f"runs_panel_{run_id}"):
        title_column, button_column = st.columns([4, 1], vertical_alignment="center")
        with title_column:
            st.markdown(f"**{markdown_text(run.label)}** · {markdown_text(run.dataset)} · {markdown_text(run.architecture)}"
                        + (" · archived" if run.archived else ""))
            if run.tags:
                st.caption("tags: " + markdown_text(", ".join(run.tags)))
            badges = st.container(horizontal=True)
            badges.badge(status.label, color=status.color)
            with badges:
                doctor_ui.problem_badge(doctor_ui.findings(store.url, run_id, (status, run.epochs_done, run.best_epoch)))
        with button_column:
            # Stop and Resume only for a session that may change this run (the engine checks it again).
            if not access.may_change(run):
                if status.is_active or status.is_resumable:  # say why there is no Stop / Resume
                    st.caption("read-only", help=access.read_only_sentence(run))
            elif status.is_active:
                if st.button("Stop", key=f"runs_stop_{run_id}", icon=":material/stop:"):
                    run_admin.act(lambda: jobs.stop(run_id, **access.engine_args()), f"Stopping run #{run_id}.")
            elif status.is_resumable:
                if st.button("Resume", key=f"runs_resume_{run_id}", icon=":material/play_arrow:"):
                    run_admin.act(lambda: jobs.resume(run_id, **access.engine_args()),
                                  f"Run #{run_id} is queued to resume.")
        done, total = run.epochs_done, max(1, run.epochs_total)
        if status.is_active:
            eta = tables.eta_seconds(cache.get(run_id).epoch_wall_times(), run.started_at, done, total)
            eta_text = f" · about {tables.format_duration(eta)} left" if eta is not None else ""
            label = "waiting for a free slot" if status == RunStatus.QUEUED else f"epoch {done}/{total}{eta_text}"
            st.progress(min(done / total, 1.0), text=label)
            age = jobs.heartbeat_age(run)
            if status == RunStatus.RUNNING and age is not None and age > jobs.stale_heartbeat_s():
                st.warning(
                    f"No heartbeat for {age:.0f} s although the worker (pid {run.pid}) still exists: it may be "
                    "suspended or hung. Stop ends it.", icon=":material/heart_broken:",
                )
        else:
            duration = tables.format_duration(run.duration())
            st.caption(f"{done}/{total} epochs" + (f" in {duration}" if duration else "") +
                       (f" · best {tables.best_text(run)}" if run.best_value is not None else ""))
        failed = status == RunStatus.FAILED
        if run.error:
            # A failure is an error; a stop or an interruption is a note about how the run ended.
            show = st.error if failed else st.warning
            show(markdown_text(run.error), icon=":material/error:" if failed else ":material/info:")
            # The traceback and the log hold server paths and library versions: behind a click,
            # and not at all on a hosted demo.
            if run.traceback and not access.demo():
                with st.expander("Traceback", expanded=False):
                    st.code(run.traceback, language=None)
        if run.test_metrics:
            metrics = [(name, value) for name, value in run.test_metrics.items() if isinstance(value, (int, float))]
            for column, (name, value) in zip(st.columns(max(1, min(4, len(metrics)))), metrics[:4]):
                column.metric(f"test {name}", f"{value:.4g}")
        if not access.demo():
            with st.expander("Worker log", expanded=False):
                st.code(_log_tail(run_id) or "(no log yet)", language=None)
        with st.expander("Tags, notes, archive, delete", icon=":material/edit_note:"):
            run_admin.editor(store, run, "runs")


def _log_tail(run_id: int) -> str:
    try:
        return jobs.log_tail(run_id, lines=LOG_LINES)
    except (LabError, OSError) as e:
        return f"(the log cannot be read: {e})"


def execution_captions(run_ids: Sequence[int]) -> None:
    """One line per selected run: the precision, XLA, devices and input its worker chose, and why."""
    for run_id in run_ids:
        chosen = execution.of_run(run_id)
        if chosen is not None:
            st.caption(f"Run {run_id}: {markdown_text(chosen.summary())}", help=markdown_text("; ".join(chosen.reasons())))
