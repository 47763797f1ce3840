"""Sweeps: define a search over config fields, watch its trials run on the slots, launch the best."""

import streamlit as st

from engine import jobs
from engine.errors import LabError
from engine.store import open_store
from engine.sweeps import control
from ui import access, cached, sweeps_view
from ui.text import markdown_text

st.title("Sweeps")
store = open_store()
jobs.reconcile(store)  # a dead worker's trial becomes interrupted (resume it on Runs) ...
control.advance_all(store)  # ... and ended trials are told, the next ones queued

with st.expander("New sweep", expanded=not store.list_sweeps()):
    spec = sweeps_view.spec_form(cached.dataset_catalog(), [a["name"] for a in cached.arch_catalog()])
    if st.button("Start sweep", key="sweeps_start", type="primary", icon=":material/play_arrow:"):
        try:
            if not access.can_change():
                raise LabError(access.refusal())
            st.session_state["sweeps_selected"] = control.start(spec, store=store, demo_mode=access.demo())
        except LabError as e:
            st.error(str(e))

sweeps = store.list_sweeps()
if not sweeps:
    st.info("No sweeps yet: define a search space above and start one. Its trials are runs the worker "
            "slots execute, so it goes on when this page is closed.", icon=":material/info:")
    st.stop()

# No state in the labels: a selectbox keeps showing the label it was drawn with; the live part says it.
labels = {s.id: f"#{s.id} {s.name or s.group}" for s in sweeps}
sweep_id = st.selectbox("Sweep", list(labels), format_func=labels.get, key="sweeps_selected")
in_progress = store.get_sweep(sweep_id).finished_at is None


@st.fragment(run_every=sweeps_view.REFRESH_S if in_progress else None)
def progress() -> None:
    report = control.status(store, sweep_id)
    if report["done"] == in_progress:
        st.rerun(scope="app")  # the last trial ended: the Stop button goes at once
    st.badge("in progress" if in_progress else "ended", color="blue" if in_progress else "green",
             icon=":material/hourglass_top:" if in_progress else ":material/check:")
    done, running, pruned, failed = st.columns(4)
    done.metric("Trials done", f"{report['trials_done']}/{report['trials_total']}")
    running.metric("Running", report["trials_running"])
    pruned.metric("Pruned", report["trials_pruned"])
    failed.metric("Failed", report["trials_failed"])
    best = report["best"]
    if best:
        st.success(f"Best so far: trial {best['trial']}, {report['metric']} {sweeps_view.best_text(best)}",
                   icon=":material/trophy:")
        st.caption(markdown_text(sweeps_view.params_text(best["params"])))
    if report["comparison"]:
        st.caption(f"Best vs runner-up (trial {report['comparison']['runner_up_trial']}): "
                   f"{report['comparison']['text']}")
    st.dataframe(sweeps_view.trials_frame(report), key="sweeps_trials", hide_index=True)
    chart, importance = st.columns([3, 2])
    figure = sweeps_view.parallel_figure(report)
    if figure is not None:
        chart.plotly_chart(figure, key="sweeps_parallel")
    importances = sweeps_view.importance_figure(control.param_importances(store, sweep_id))
    if importances is not None:
        importance.plotly_chart(importances, key="sweeps_importance")
    else:
        importance.caption("Parameter importances appear after three completed trials.")


progress()
access.share_button("sweep", [sweep_id], key="sweeps_share")
launch_column, stop_column = st.columns(2)
if launch_column.button("Launch the best configuration as a run", key="sweeps_launch_best",
                        icon=":material/rocket_launch:"):
    config = control.best_config(store, sweep_id)
    if not access.can_change():
        launch_column.error(access.refusal(), icon=":material/lock:")
    elif config is None:
        launch_column.warning("No trial has completed yet.")
    else:
        try:
            run_id = jobs.launch(config, store=store, **access.engine_args())
        except LabError as e:
            launch_column.error(markdown_text(e))
        else:
            st.switch_page("app_pages/runs.py", query_params={"runs": str(run_id)})
if stop_column.button("Stop the sweep", key="sweeps_stop", icon=":material/stop_circle:",
                      disabled=not in_progress or not access.can_change()):
    control.stop(sweep_id, store=store)
    st.rerun()
