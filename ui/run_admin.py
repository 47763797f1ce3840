"""Tags, notes, archive and delete of a run: one editor for the Compare and Runs pages.

Every change goes through engine.compare.curation; names, tags and notes are shown as
text (text fields, or escaped with ``ui.text.markdown_text``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import streamlit as st

from engine.compare import curation
from engine.errors import LabError
from engine.runs import RunRecord
from engine.store import RunStore
from ui import access
from ui.text import markdown_text


def editor_for_one_of(store: RunStore, runs: Sequence[RunRecord], prefix: str) -> None:
    """A run chooser and the editor of the chosen run."""
    by_id = {run.id: run for run in runs}
    run_id = st.selectbox("Run", list(by_id), key=f"{prefix}_admin_run", format_func=lambda i: by_id[i].label)
    editor(store, by_id[run_id], prefix)


def editor(store: RunStore, run: RunRecord, prefix: str) -> None:
    """Tags (comma-separated) and notes with a Save button; Archive / Unarchive; Delete with a confirmation."""
    key = f"{prefix}_{run.id}"
    if not access.may_change(run):
        st.caption(access.read_only_sentence(run))
        return
    args = access.engine_args()
    tags_text = st.text_input("Tags (comma-separated)", value=", ".join(run.tags), key=f"{key}_tags")
    notes = st.text_area("Notes", value=run.notes, key=f"{key}_notes", height=80)
    save_column, archive_column, delete_column = st.columns(3)
    if save_column.button("Save tags and notes", key=f"{key}_save", icon=":material/save:"):
        act(lambda: (curation.set_tags(store, run.id, [tags_text], **args),
                     curation.set_notes(store, run.id, notes, **args)),
             f"Saved the tags and notes of run #{run.id}.")
    archive_label = "Unarchive" if run.archived else "Archive"
    if archive_column.button(archive_label, key=f"{key}_archive", icon=":material/archive:"):
        act(lambda: curation.set_archived(store, run.id, not run.archived, **args),
             f"Run #{run.id} {'is back in the run lists' if run.archived else 'is archived'}.")
    confirm_key = f"{key}_confirm_delete"
    if run.status.is_active:
        delete_column.button("Delete", key=f"{key}_delete", icon=":material/delete:", disabled=True)
        st.caption(f"Run #{run.id} is {run.status.label}: a queued or running run must be stopped before it "
                   "can be deleted.")
        return
    if delete_column.button("Delete", key=f"{key}_delete", icon=":material/delete:"):
        st.session_state[confirm_key] = True
    if st.session_state.get(confirm_key):
        st.warning(f"Delete run {markdown_text(run.label)} with its metrics, predictions and folder? "
                   "This cannot be undone.", icon=":material/warning:")
        yes_column, no_column = st.columns(2)
        if yes_column.button("Yes, delete it", key=f"{key}_delete_yes", type="primary"):
            st.session_state.pop(confirm_key, None)
            act(lambda: curation.delete_run(store, run.id, **args), f"Run #{run.id} deleted.")
        if no_column.button("Cancel", key=f"{key}_delete_no"):
            st.session_state.pop(confirm_key, None)
            st.rerun()


def act(action: Callable[[], object], message: str) -> None:
    """Run a button's engine call: its sentence on failure, a toast and a rerun of the page on success."""
    try:
        action()
    except LabError as e:
        st.error(markdown_text(e), icon=":material/error:")
        return
    st.toast(message)
    time.sleep(0.1)
    st.rerun()


__all__ = ["act", "editor", "editor_for_one_of"]
