"""Compare: pick runs from a filterable table; overlaid curves, summary, config differences,
hyperparameter views and confusion matrices. The choices live in the URL (ui/compare_view.py)."""

import streamlit as st

from engine import compare
from engine.store import open_store
from ui import access, compare_view

st.title("Compare runs")
store = open_store()
archived = compare_view.show_archived()
runs = store.list_runs(archived=None if archived else False)
if not runs:
    st.info("No runs to compare yet. Launch a few on the Train page (or `python -m engine launch`).",
            icon=":material/info:")
    st.page_link("app_pages/train.py", label="Configure a run", icon=":material/tune:")
    st.stop()

selected = compare_view.selection(runs)
if not selected:
    st.info("Tick runs in the table (or choose them above the table's caption) to compare them.")
    st.stop()
comparison = compare.load(store, selected)
if not any(comparison.histories.values()):
    st.info("None of the selected runs has finished an epoch yet; their curves appear here when one does.")
    st.stop()
options = compare_view.view_options(comparison)
compare_view.render(store, comparison, options)
access.share_button("compare", selected, key="compare_share")
