"""Data: bring your own scans (upload or a server folder: preview, then import), and browse any dataset."""

import streamlit as st

from engine import datasets, paths
from ui import access, cached, dataset_browser, figures, import_form, state, tables, uploads, volume_viewer
from ui import inspect as inspect_ui
from ui.text import markdown_text


def delete_dataset(name: str) -> None:
    """The confirmed delete (a callback, so the picker can move to another dataset before it is drawn)."""
    st.session_state.pop("data_confirm_delete", None)
    try:
        datasets.delete_imported(name, actor=access.identity(), demo_mode=access.demo())
    except import_form.ERRORS as error:
        st.session_state["data_message"] = ("error", str(error))
    else:
        st.session_state.pop("data_browse", None)
        cached.dataset_preview.clear()  # the Train page's preview of that name is gone too
        st.session_state["data_message"] = ("success", f"Deleted the dataset {name}.")


st.title("Data")
uploads.remove_stale_uploads()
# The outcome of the last import or delete, at the top where it is seen (and as a toast).
message = st.session_state.pop("data_message", None)
if message:
    getattr(st, message[0])(markdown_text(message[1]))
    st.toast("Done: the outcome is at the top of the page." if message[0] == "success" else
             "Something went wrong: the message is at the top of the page.", icon=":material/arrow_upward:")

# ------------------------------------------------------------------ import
st.header("Import your scans")
# A hosted demo imports only uploads (the engine refuses server paths there too).
sources = import_form.SOURCE_KINDS[:1] if access.demo() else import_form.SOURCE_KINDS
uploaded = st.radio("Source", sources, horizontal=True, key="data_source_kind") == "Upload files"
if not access.can_change():
    st.caption(access.refusal())
if uploaded:
    # A new key after each import empties the uploader (a kept file invites a second import).
    files = st.file_uploader(
        "A zip (one folder per class, or scans and a labels CSV) with or without a separate labels CSV, "
        "an HDF5 / NPZ file, or several scans and a CSV",
        accept_multiple_files=True, key=uploads.upload_key(),
    )
else:
    folder = st.text_input("Folder (or HDF5 / NPZ file) on the server", key="data_folder")
    st.caption("The dashboard imports only from these folders (set CONV3D\\_LAB\\_IMPORT\\_ROOTS to change them):")
    st.code("\n".join(str(root) for root in datasets.allowed_import_roots()), language=None)
option_values = import_form.options_form(uploaded)

if st.button("Preview", key="data_preview", icon=":material/preview:", disabled=not access.can_change()):
    uploads.discard_upload(st.session_state.pop("data_pending", {}).get("upload"))
    try:
        with st.spinner("Reading the headers..."):
            pending = import_form.prepare_preview(
                [(file.name, file.getbuffer()) for file in files or []] if uploaded else None,
                None if uploaded else folder, option_values,
            )
    except import_form.ERRORS as error:
        import_form.show_error(error, "No preview: ")
    else:
        st.session_state["data_pending"] = pending
        st.session_state["data_name"] = pending["name"]
        import_form.seed_columns(pending["preview"])
        st.toast(f"Preview ready below the button: {pending['preview']['samples']} samples.",
                 icon=":material/preview:")
        st.session_state.pop("data_positive_class", None)  # a new preview starts on its own guess

pending = st.session_state.get("data_pending")
if pending:
    with st.container(border=True):
        import_form.show_preview(pending["preview"], pending["label"], pending["seconds"])
        import_form.column_pickers(pending["preview"])
        usable = pending["preview"]["samples"] > 0 and len(pending["preview"]["classes"]) > 1
        trainable = usable and not pending["preview"]["problems"]
        if not usable:
            st.warning("Nothing to import: a dataset needs usable samples of at least two classes. "
                       "Check the files skipped above, or the labels CSV.", icon=":material/warning:")
        positive = dataset_browser.positive_class_choice(
            list(pending["preview"]["classes"]), pending["preview"].get("positive_class"), "data_positive_class")
        name = st.text_input("Dataset name", key="data_name", help="1 to 60 letters, digits, '-' or '_'.")
        import_column, discard_column, _ = st.columns([1, 1, 4])
        import_clicked = import_column.button("Import", key="data_import", type="primary", icon=":material/download:",
                                              disabled=not trainable)
        if discard_column.button("Discard", key="data_discard", icon=":material/delete_sweep:"):
            uploads.discard_upload(st.session_state.pop("data_pending")["upload"])
            st.rerun()
        if import_clicked and not access.can_change():
            st.error(access.refusal(), icon=":material/lock:")
        elif import_clicked:
            try:
                result = import_form.run_import(pending["source"], name.strip(), pending["options"], positive)
            except import_form.ERRORS as error:
                import_form.show_error(error, "Nothing was imported: ")
            else:
                uploads.discard_upload(st.session_state.pop("data_pending")["upload"])
                uploads.next_upload_key()
                cached.dataset_preview.clear()  # a replaced name must not show its old preview on Train
                st.session_state["data_browse"] = result.name
                st.session_state["data_message"] = (
                    "success", f"Imported {result.name}: {result.samples} samples, {len(result.classes)} classes, "
                               f"{len(result.skipped)} skipped, in {result.seconds:.2f} s. "
                               "It is on the Train page now.")
                st.rerun()

# ------------------------------------------------------------------ browse
st.header("Browse")
catalog = {entry["name"]: entry for entry in cached.dataset_catalog()}
newest_import = max((e for e in catalog.values() if e.get("imported")), key=lambda e: e["created_at"], default=None)
state.seed("data_browse", newest_import["name"] if newest_import else next(iter(catalog)), lambda n: n in catalog)
name = st.selectbox(
    "Dataset", list(catalog), key="data_browse",
    format_func=lambda n: f"{catalog[n]['title']} ({n})" + (" · imported" if catalog[n].get("imported") else ""),
)
entry = catalog[name]
st.caption(markdown_text(entry["description"]))
if entry.get("imported"):
    steps = ", ".join(f"{key} {value}" for key, value in entry["preprocessing"].items() if value not in (None, False))
    st.text(f"Source: {dataset_browser.source_label(entry)}\nPreprocessing: {steps}")
    may_delete = access.may_change_dataset(name)  # the engine refuses the others too
    if access.can_change() and not may_delete:
        st.caption("This dataset is read-only to you: " + ("the lab's operator imported it." if entry.get("owner") is None
                                                         else "another visitor imported it."))
    if st.session_state.get("data_confirm_delete") != name:
        st.button("Delete this dataset...", key="data_delete", icon=":material/delete:", disabled=not may_delete,
                  on_click=lambda: st.session_state.update(data_confirm_delete=name))
    else:
        st.warning(f"Delete the imported dataset {markdown_text(name)}? Its files are removed; runs "
                   "already trained on it keep their results.", icon=":material/warning:")
        confirm_column, cancel_column, _ = st.columns([1, 1, 4])
        confirm_column.button("Delete", key="data_delete_confirm", type="primary", on_click=delete_dataset,
                              args=(name,), disabled=not may_delete)
        cancel_column.button("Cancel", key="data_delete_cancel",
                             on_click=lambda: st.session_state.pop("data_confirm_delete", None))
dataset_browser.positive_class_editor(entry, access.can_change())

try:
    version, data_root = dataset_browser.catalog_version(entry), str(paths.data_root())
    summary = dataset_browser.dataset_summary(name, version, data_root)
except import_form.ERRORS as error:
    import_form.show_error(error)
    st.stop()
columns = st.columns(4)
columns[0].metric("Samples", summary["num_samples"])
columns[1].metric("Volume", tables.format_shape(summary["volume_shape"]))
columns[2].metric("Classes", len(summary["class_names"]))
columns[3].metric("Groups", summary["num_groups"] or "none")
balance_column, histogram_column = st.columns(2)
balance_column.plotly_chart(
    figures.class_balance_figure(summary["class_names"], summary["class_counts"]),
    key="data_class_balance", config={"displayModeBar": False},
)
histogram_column.plotly_chart(
    figures.intensity_histogram_figure(summary["histogram_edges"], summary["histogram"]),
    key="data_histogram", config={"displayModeBar": False},
)
st.subheader("Middle axial slices")
st.plotly_chart(figures.slice_grid_figure(summary["grid"], summary["grid_titles"]), key="data_slice_grid", config={"displayModeBar": False})

st.subheader("Sample viewer")
state.seed("data_sample", 0, lambda index: 0 <= index < summary["num_samples"])
sample = st.number_input("Sample", 0, summary["num_samples"] - 1, step=1, key="data_sample")
label = summary["class_names"][summary["labels"][sample]]
group = "" if summary["groups"] is None else f", group {summary['groups'][sample]}"
st.text(f"Sample {sample}: class {label}{group}")
volume = dataset_browser.sample_volume(name, version, data_root, int(sample))
indices, level, width = volume_viewer.volume_viewer(volume, (name, version, int(sample)), "data_viewer")
st.plotly_chart(inspect_ui.slices_chart(volume, tuple(indices), level, width, None), key="data_slices")
if st.toggle("3D view", value=False, key="data_3d"):
    st.plotly_chart(inspect_ui.volume_chart(volume, level, width, None), key="data_volume")
