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
    spec = sweeps_view.spec_form([d["name"] for d in cached.dataset_catalog()],
                                 [a["name"] for a in cached.arch_catalog()])
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

labels = {s.id: f"#{s.id} {s.name or s.group}" + ("" if s.finished_at else " (in progress)") for s in sweeps}
sweep_id = st.selectbox("Sweep", list(labels), format_func=labels.get, key="sweeps_selected")


@st.fragment(run_every=2.0 if store.get_sweep(sweep_id).finished_at is None else None)
def progress() -> None:
    report = control.status(store, sweep_id)
    done, running, pruned, failed = st.columns(4)
    done.metric("Trials done", f"{report['trials_done']}/{report['trials_total']}")
    running.metric("Running", report["trials_running"])
    pruned.metric("Pruned", report["trials_pruned"])
    failed.metric("Failed", report["trials_failed"])
    best = report["best"]
    if best:
        estimate = best["estimate"] or {}
        interval = (f" ± {estimate['std']:.4f} (95% CI {estimate['low']:.4f}–{estimate['high']:.4f}, "
                    f"{estimate['n']} folds)" if estimate.get("std") is not None else "")
        st.success(f"Best so far: trial {best['trial']}, {report['metric']} {best['value']:.4f}{interval}",
                   icon=":material/trophy:")
        st.json(best["params"], expanded=True)
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
                      disabled=store.get_sweep(sweep_id).finished_at is not None or not access.can_change()):
    control.stop(sweep_id, store=store)
    st.rerun()
