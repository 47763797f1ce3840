"""Runs: every run in a table; live curves, progress, Stop/Resume and logs for the selected ones."""

import streamlit as st

from engine import jobs
from engine.store import open_store
from ui import access, runs_view

st.title("Runs")
store = open_store()
jobs.reconcile(store)  # runs whose worker died become interrupted before they are listed
archived_column, lr_find_column = st.columns(2)
show_archived = archived_column.toggle("Show archived runs", key="runs_show_archived")
show_lr_find = lr_find_column.toggle("Show lr-find runs", key="runs_show_lr_find",
                                     help="learning-rate range tests started from Train's \"Find a learning rate\"")
listing = runs_view.Listing(archived=None if show_archived else False, lr_find=show_lr_find)
runs = listing.runs(store)
if not runs:
    st.info("No runs yet. Start the sample run on the Home page or configure one on Train.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Configure a run", icon=":material/tune:")
    st.stop()

table_slot = st.container()  # the table sits above the multiselect but needs its value
selected = runs_view.selection(runs)
with table_slot:
    runs_view.runs_table(store, runs, selected, listing)
runs_view.group_summaries(store, runs)
if not selected:
    st.info("Choose one or more runs above to see their curves.")
    st.stop()
runs_view.compare_link(selected)
access.share_button("run" if len(selected) == 1 else "compare", selected, key="runs_share")
runs_view.execution_captions(selected)
runs_view.live_panel(store, selected, {run.id: run.status for run in runs if run.id in selected})
