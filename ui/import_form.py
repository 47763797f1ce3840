"""The Data page's import: the import options form, the preview of what an import would make (with its
column pickers), and the import itself with its progress bar.

Uploads are staged by ``ui.uploads``; the dataset browser is ``ui.dataset_browser``.

Every string that came from a user (file and class names, dataset names, the
engine's error sentences, which quote file names) is shown as text: in
dataframes, ``st.text`` / ``st.code``, or escaped with ``markdown_text`` where
Streamlit would read Markdown (``st.error``, ``st.success``, captions), and
escaped with ``plotly_text`` in figure titles and tick labels.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from engine import datasets
from engine.hosting import demo
from engine.datasets import preprocess, readers
from engine.errors import DataError, LabError
from ui import access, uploads
from ui.text import markdown_text

# Progress bar updates during an import: at most one per this many seconds (each is a message to the browser).
PROGRESS_INTERVAL_S = 0.1
# Skipped files listed in full; a longer list scrolls.
SKIPPED_LINES = 12
SOURCE_KINDS = ("Upload files", "Folder on the server")
# The Import options' choice that lets the import decide the intensities from the data.
AUTO = "auto"
# The preview's column pickers: role -> label; group and split may be "none" (labels.NO_COLUMN).
COLUMN_ROLES = {"id": "Id column", "label": "Label column", "group": "Group (patient) column",
                "split": "Split column"}
NO_COLUMN_LABEL = "(none)"
ERRORS = (LabError, OSError)


# ------------------------------------------------------------------ plain helpers
def default_dataset_name(source_name: str) -> str:
    """A valid dataset name from a file or folder name: 'My scans (2).zip' -> 'My-scans-2'."""
    stem = source_name
    for suffix in (".zip", ".nii.gz", ".nii", ".h5", ".hdf5", ".npz", ".csv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60]
    return name or "imported"


def labels_csv_path(source: Path, typed: str, uploaded: bool, beside: Sequence[Path] = ()) -> str | None:
    """The labels CSV a user typed, as an absolute path: a CSV uploaded beside the zip (``beside``) of that
    name, else relative to the source folder (or found by its name inside it); absolute paths only for
    server folders and inside the allowed roots. Nothing typed: the one CSV uploaded beside the zip, else
    None (the import finds a CSV at the top of the source by itself); "none": class folders."""
    typed = typed.strip()
    if typed.casefold() == datasets.NO_LABELS_CSV:
        return datasets.NO_LABELS_CSV
    if not typed:
        return str(beside[0]) if len(beside) == 1 else None
    for path in beside:
        if path.name.casefold() == typed.casefold():
            return str(path)
    folder = source if source.is_dir() else source.parent
    candidate = Path(typed)
    if candidate.is_absolute():
        if uploaded:
            raise DataError("For an upload, give the labels CSV's name as it is in the upload, not a server path.")
        return str(datasets.check_import_path(candidate, demo_mode=access.demo()))
    resolved = (folder / candidate).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise DataError(f"The labels CSV {typed!r} must lie inside the imported folder.")
    if not resolved.is_file():
        named = [path for path in folder.rglob("*") if path.is_file() and path.name.casefold() == typed.casefold()]
        if len(named) != 1:
            raise DataError(f"The labels CSV {typed!r} was not found in the imported folder; check its name.")
        resolved = named[0]
    return str(resolved)


def parse_shape(text: str) -> tuple[int, int, int] | None:
    """'32 64 64' or '32x64x64' -> (32, 64, 64); empty -> None (keep each volume's shape)."""
    parts = [part for part in re.split(r"[\s,x×]+", text.strip().lower()) if part]
    if not parts:
        return None
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise DataError(f"The target shape {text.strip()[:40]!r} is not three whole numbers D H W (e.g. 32 64 64).")
    depth, height, width = (int(part) for part in parts)
    return depth, height, width


def prepare_preview(files: Sequence[tuple[str, bytes | memoryview]] | None, folder: str | None,
                    values: dict[str, Any]) -> dict[str, Any]:
    """Stage an upload (``files``) or check a server path (``folder``), then preview its import.

    Returns the pending import: the source, the folder to remove afterwards
    (uploads only), the options, the preview as a dict, the preview's seconds and
    a suggested dataset name. Raises the engine's errors; nothing is left behind then.
    """
    started = time.perf_counter()
    upload = None
    try:
        if files is not None:
            upload, source = uploads.stage_upload(files)
            label = ", ".join(str(name) for name, _ in files)
            zips = [str(name) for name, _ in files if str(name).lower().endswith(".zip")]
            suggested = default_dataset_name(zips[0] if zips else str(files[0][0]) if len(files) == 1
                                             else "uploaded-scans")
        else:
            if not (folder or "").strip():
                raise DataError("Type the path of a folder (or an HDF5 / NPZ file) on the server first.")
            source = datasets.check_import_path((folder or "").strip(), demo_mode=access.demo())
            label, suggested = str(source), default_dataset_name(source.name)
        options = import_options(values, source, uploaded=files is not None, beside=uploads.uploaded_csvs(upload))
        preview = datasets.preview_import(source, options).to_dict()
    except DataError as error:
        uploads.discard_upload(upload)
        if upload is not None and type(error) is DataError:  # name the upload, not its hidden folder
            sentence = _without_folder(str(error), upload)
            raise DataError(sentence[:1].upper() + sentence[1:]) from error
        raise
    except BaseException:
        uploads.discard_upload(upload)
        raise
    if upload is not None:
        preview["skipped"] = {path: _without_folder(reason, upload) for path, reason in preview["skipped"].items()}
    return {"source": str(source), "upload": None if upload is None else str(upload), "label": label,
            "options": options, "preview": preview, "seconds": time.perf_counter() - started, "name": suggested}


def preview_with_columns(pending: dict[str, Any], columns: dict[str, str | None]) -> dict[str, Any]:
    """The pending import previewed again with the labels CSV's columns chosen (role -> column, None: guess,
    ``datasets.NO_COLUMN``: none); the same source and other options. Raises the engine's errors."""
    started = time.perf_counter()
    options = dataclasses.replace(pending["options"], id_column=columns.get("id"), label_column=columns.get("label"),
                                  group_column=columns.get("group"), split_column=columns.get("split"))
    preview = datasets.preview_import(pending["source"], options).to_dict()
    upload = pending.get("upload")
    if upload is not None:
        preview["skipped"] = {path: _without_folder(reason, Path(upload)) for path, reason in preview["skipped"].items()}
    return {**pending, "options": options, "preview": preview, "seconds": time.perf_counter() - started}


def _without_folder(text: str, upload: Path) -> str:
    """An engine sentence about an upload with the hidden folder's path and name left out."""
    return text.replace(f"{upload}/", "").replace(str(upload), "the upload").replace(upload.name, "the upload")


# ------------------------------------------------------------------ figures (pure)


# ------------------------------------------------------------------ cached reads


# ------------------------------------------------------------------ widgets
def show_error(error: BaseException, prefix: str = "") -> None:
    """An engine error as one sentence in a red box, its user-supplied parts shown literally."""
    st.error(markdown_text(prefix + str(error)), icon=":material/error:")


def options_form(uploaded: bool) -> dict[str, Any]:
    """The import options a person usually needs; returns the raw values (``import_options`` checks them)."""
    with st.expander("Import options (labels CSV, resampling, intensities)"):
        columns = st.columns(3)
        values = {
            "format": columns[0].selectbox("Format", readers.FORMATS, key="data_format"),
            "labels_csv": columns[1].text_input(
                "Labels CSV", key="data_labels_csv", placeholder="(found by itself)",
                help="A CSV of id, label [, group] [, split]: its file name in the "
                     + ("upload (uploaded beside the zip, or inside it)" if uploaded else "folder")
                     + ". Left empty, the one CSV uploaded beside a zip or lying at the top of the source is used, "
                     "else one folder per class; 'none' reads class folders regardless.",
            ),
            "group_column": columns[2].text_input("Group column", key="data_group_column",
                                                  placeholder="(recognised by name)"),
            "shape": columns[0].text_input("Resample to D H W", key="data_shape", placeholder="(keep)"),
            "normalization": columns[1].selectbox(
                "Normalisation", (AUTO, *preprocess.NORMALIZATIONS), key="data_normalization",
                help="auto (with the CT window on auto too): chosen from the data, e.g. a z-score per MR volume; "
                     "'none' keeps the values as read."),
            "window": columns[2].selectbox(
                "CT window", (AUTO, "none", *preprocess.CT_WINDOWS), key="data_window",
                help="auto (with the normalisation on auto too): soft_tissue for CT (DICOM Modality CT or "
                     "Hounsfield-like values), none otherwise."),
            "channels": columns[0].selectbox("Channels", preprocess.CHANNEL_MODES, key="data_channels"),
            "reorient": columns[1].checkbox("Reorient to RAS+", value=True, key="data_reorient",
                                            help="Off: volumes keep their stored axes, and scans of several "
                                                 "orientations are refused."),
        }
    return values


def import_options(values: dict[str, Any], source: Path, uploaded: bool,
                   beside: Sequence[Path] = ()) -> datasets.ImportOptions:
    """The form's values as ImportOptions (the engine validates them); DataError for a bad shape or CSV.

    Window and normalisation both on auto leave the intensities to the import; either one set makes the
    other explicit too (auto then means none)."""
    auto = values["window"] == AUTO and values["normalization"] == AUTO
    return datasets.ImportOptions(
        format=values["format"],
        labels_csv=labels_csv_path(source, values["labels_csv"], uploaded, beside),
        group_column=values["group_column"].strip() or None,
        shape=parse_shape(values["shape"]),
        normalization=None if auto else ("none" if values["normalization"] == AUTO else values["normalization"]),
        window=None if values["window"] in (AUTO, "none") else values["window"],
        channels=values["channels"],
        reorient=bool(values["reorient"]),
    )


def _count_frame(counts: dict[str, int], column: str) -> list[dict[str, Any]]:
    return [{column: str(key), "samples": int(value)} for key, value in counts.items()]


def show_preview(preview: dict[str, Any], source_label: str, seconds: float) -> None:
    """What the import would do: format, samples per class, shapes and spacings, groups, splits, skips."""
    st.subheader("Preview")
    st.text(f"Source: {source_label}")
    columns = st.columns(5)
    columns[0].metric("Format", f"{preview['format']}")
    columns[1].metric("Samples", preview["samples"])
    columns[2].metric("Classes", len(preview["classes"]))
    columns[3].metric("Groups", preview["groups"] or "none")
    columns[4].metric("Skipped", len(preview["skipped"]))
    st.caption(f"Layout: {markdown_text(preview['layout'])}. Previewed in {seconds:.2f} s; voxels are checked "
               "during the import.")
    for problem in preview.get("problems", []):
        st.error(markdown_text(problem), icon=":material/block:")
    st.text(f"Intensities: {preview.get('intensity', '')}")
    if preview.get("labels_csv"):
        columns = preview.get("columns", {})
        st.text(f"Labels CSV: {preview['labels_csv']} (id column: {columns.get('id') or '-'}, label column: "
                f"{columns.get('label') or '-'}, group column: {columns.get('group') or 'none'}, split column: "
                f"{columns.get('split') or 'none'})")
    class_column, shape_column, spacing_column = st.columns(3)
    class_column.dataframe(_count_frame(preview["classes"], "class"), hide_index=True, key="data_preview_classes")
    shape_column.dataframe(
        _count_frame(preview["shapes"], "shape (D×H×W)") or [{"shape (D×H×W)": "not in the headers"}],
        hide_index=True, key="data_preview_shapes",
    )
    spacing_column.dataframe(_count_frame(preview["spacings"], "spacing") or [{"spacing": "not in the headers"}],
                             hide_index=True, key="data_preview_spacings")
    if len(preview["shapes"]) > 1:
        st.warning("The volumes have different shapes: give a target shape under Import options (e.g. 64 64 64).",
                   icon=":material/warning:")
    if preview["splits"]:
        st.dataframe(_count_frame(preview["splits"], "predefined split"), hide_index=True, key="data_preview_splits")
    if preview["series"]:
        st.dataframe(_count_frame(preview["series"], "DICOM series"), hide_index=True, key="data_preview_series")
    if preview["skipped"]:
        st.markdown(f"**Will be skipped ({len(preview['skipped'])})**")
        # Plain text that wraps: a reason is a sentence, often longer than a table cell.
        st.code("\n".join(f"{path}: {reason}" for path, reason in preview["skipped"].items()), language=None,
                wrap_lines=True, height="content" if len(preview["skipped"]) <= SKIPPED_LINES else 300)
    if preview["unmatched_rows"]:
        st.markdown(f"**Labels CSV rows without a file ({len(preview['unmatched_rows'])})**")
        st.text(", ".join(str(row) for row in preview["unmatched_rows"][:50]))
    for note in preview["notes"]:
        st.text(f"Note: {note}")


def seed_columns(preview: dict[str, Any]) -> None:
    """Point the column pickers at a new preview's columns (call before they are drawn, or in a callback)."""
    for role in COLUMN_ROLES:
        st.session_state[f"data_column_{role}"] = preview.get("columns", {}).get(role) or NO_COLUMN_LABEL


def _columns_changed() -> None:
    """A column picker changed: preview again with the chosen columns (a callback, before the page is drawn)."""
    pending = st.session_state.get("data_pending")
    if not pending:
        return
    chosen = {role: st.session_state.get(f"data_column_{role}") for role in COLUMN_ROLES}
    chosen = {role: datasets.NO_COLUMN if value == NO_COLUMN_LABEL else value for role, value in chosen.items()}
    try:
        pending = preview_with_columns(pending, chosen)
    except ERRORS as error:
        st.session_state["data_column_error"] = str(error)
    st.session_state["data_pending"] = pending
    seed_columns(pending["preview"])


def column_pickers(preview: dict[str, Any]) -> None:
    """Selectboxes that change the labels CSV's columns, each change previewed again at once."""
    header = preview.get("csv_columns") or []
    if not preview.get("labels_csv") or not header:
        return
    if any(f"data_column_{role}" not in st.session_state for role in COLUMN_ROLES):
        seed_columns(preview)
    pickers = st.columns(len(COLUMN_ROLES))
    for picker, (role, label) in zip(pickers, COLUMN_ROLES.items()):
        choices = list(header) if role in ("id", "label") else [NO_COLUMN_LABEL, *header]
        picker.selectbox(label, choices, key=f"data_column_{role}", on_change=_columns_changed)
    error = st.session_state.pop("data_column_error", None)
    if error:
        show_error(error, "The columns were not changed: ")


def run_import(source: str, name: str, options: datasets.ImportOptions,
               positive_class: str | None = None) -> datasets.ImportResult:
    """``import_dataset`` with a progress bar; raises the engine's errors."""
    bar = st.progress(0.0, text="Starting the import...")
    last_update = 0.0

    def progress(step: datasets.ImportProgress) -> None:
        nonlocal last_update
        now = time.perf_counter()
        if now - last_update >= PROGRESS_INTERVAL_S or step.done == step.total:
            last_update = now
            bar.progress(step.done / max(step.total, 1),
                         text=f"{step.done}/{step.total} samples read, {step.skipped} skipped")

    try:
        allowance = demo.import_allowance(access.identity()) if access.demo() else None
        return datasets.import_dataset(source, name, options, progress=progress, check_splits=True,
                                       positive_class=positive_class, max_bytes=allowance,
                                       actor=access.identity(), demo_mode=access.demo())
    finally:
        bar.empty()


