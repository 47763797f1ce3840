"""A read-only share link's view: one run, one comparison or one sweep, and nothing else (engine/hosting/share.py).

streamlit_app.py runs this page alone for a session opened with ``?share=TOKEN`` and only after the token
checked out; this session's actor is a share actor, which every engine call that changes state refuses.
"""

import streamlit as st

from engine import compare
from engine.store import open_store
from engine.sweeps import control
from ui import access, compare_view, sweeps_view

view = access.shared_view()
store = open_store()
st.title(view.title)
st.caption(f"A read-only view shared with you, open until {view.expires_text}. Nothing here can be changed.")
if view.kind == "sweep":
    report = control.status(store, view.ids[0])
    done, running, pruned, failed = st.columns(4)
    done.metric("Trials done", f"{report['trials_done']}/{report['trials_total']}")
    running.metric("Running", report["trials_running"])
    pruned.metric("Pruned", report["trials_pruned"])
    failed.metric("Failed", report["trials_failed"])
    st.dataframe(sweeps_view.trials_frame(report), key="shared_trials", hide_index=True)
    figure = sweeps_view.parallel_figure(report)
    if figure is not None:
        st.plotly_chart(figure, key="shared_parallel")
    st.stop()
comparison = compare.load(store, list(view.ids))
if not any(comparison.histories.values()):
    st.info("No epoch has been recorded yet; the curves appear here when one is.")
    st.stop()
compare_view.render(store, comparison, compare_view.view_options(comparison), editable=False)
