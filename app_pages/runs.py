"""Runs: every run in a table; live curves, progress, Stop/Resume and logs for the selected ones."""

import streamlit as st

from engine import jobs
from engine.store import open_store
from ui import runs_view

st.title("Runs")
store = open_store()
jobs.reconcile(store)  # runs whose worker died become interrupted before they are listed
show_archived = st.toggle("Show archived runs", key="runs_show_archived")
runs = store.list_runs(archived=None if show_archived else False)
if not runs:
    st.info("No runs yet. Start the demo run on the Home page or configure one on Train.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Configure a run", icon=":material/tune:")
    st.stop()

table_slot = st.container()  # the table sits above the multiselect but needs its value
selected = runs_view.selection(runs)
with table_slot:
    runs_view.runs_table(store, runs, selected, archived=None if show_archived else False)
if not selected:
    st.info("Choose one or more runs above to see their curves.")
    st.stop()
runs_view.compare_link(selected)
runs_view.execution_captions(selected)
runs_view.live_panel(store, selected, {run.id: run.status for run in runs if run.id in selected})
