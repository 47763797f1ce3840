"""The Data page's pieces: staging uploads, the import form and preview, and the dataset browser.

Three layers, top to bottom: plain helpers (uploads into a fresh folder, a
dataset name from a file name, escaping), pure Plotly figure builders (class
histograms, a grid of middle slices), and streamlit widgets and cached reads.

Every string that came from a user (file and class names, dataset names, the
engine's error sentences, which quote file names) is shown as text: in
dataframes, ``st.text`` / ``st.code``, or escaped with ``markdown_text`` where
Streamlit would read Markdown (``st.error``, ``st.success``, captions), and
escaped with ``plotly_text`` in figure titles and tick labels.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import datasets, demo, paths
from engine.datasets import preprocess, readers
from engine.errors import DataError, LabError
from ui import access, state
from ui.text import markdown_text, plotly_text, shorten

# Uploaded files are written into a fresh hidden folder of data/imports/ with this prefix (zips: extract_zip's).
UPLOAD_PREFIX = ".upload-"
UNZIPPED_PREFIX = ".unzipped-"
# Upload folders left behind by a closed tab are removed when the page is opened this long after.
UPLOAD_MAX_AGE_S = 24 * 3600
# The browser's sample: at most this many volumes per class feed the intensity histogram ...
HISTOGRAM_VOLUMES_PER_CLASS = 32
HISTOGRAM_BINS = 60
# ... and the grid of middle slices shows this many samples per class, for at most this many classes.
GRID_COLUMNS = 6
GRID_MAX_CLASSES = 10
# Progress bar updates during an import: at most one per this many seconds (each is a message to the browser).
PROGRESS_INTERVAL_S = 0.1
# Skipped files listed in full; a longer list scrolls.
SKIPPED_LINES = 12
SOURCE_KINDS = ("Upload files", "Folder on the server")
# A labels CSV uploaded next to a zip is written into this folder of the upload (beside the extracted zip).
UPLOADED_LABELS = "uploaded labels"
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


def _upload_name(name: str) -> str:
    """The file name an upload is written under; DataError for names that cannot be a file's."""
    base = str(name).replace("\\", "/").split("/")[-1]
    if not base or base in (".", "..") or base.startswith(".") or any(ord(c) < 32 for c in base) or len(base) > 255:
        raise DataError(f"The uploaded file name {str(name)[:80]!r} cannot be used; rename the file.")
    return base


def stage_upload(files: Sequence[tuple[str, bytes | memoryview]]) -> tuple[Path, Path]:
    """Write uploaded files (name, bytes) into a fresh folder of data/imports/; returns (that folder, the source).

    Several files are written side by side into one folder; a single zip is
    extracted with ``extract_zip`` (entry, size and ratio caps), and CSV files
    uploaded with it are written beside it into ``UPLOADED_LABELS`` (see
    ``uploaded_csvs``); a single HDF5 / NPZ file is its own source. The source is named after the upload (the zip's
    name, the file's, or "uploaded files"), which is what the dataset's record
    says it came from. The caller removes the folder (``discard_upload``) after
    the import or when the preview is discarded. Raises DataError.
    """
    if not files:
        raise DataError("Choose one or more files to upload first.")
    if access.demo():
        demo.check_upload(sum(len(content) for _, content in files))
    names = [_upload_name(name) for name, _ in files]
    duplicates = sorted({name for name in names if [n.casefold() for n in names].count(name.casefold()) > 1})
    if duplicates:
        raise DataError(f"Several uploaded files are named {duplicates[0]!r}; upload each file once.")
    zips = [name for name in names if name.lower().endswith(".zip")]
    others = [name for name in names if not name.lower().endswith((".zip", ".csv"))]
    if len(zips) > 1 or (zips and others):
        raise DataError(f"Upload {zips[0]!r} on its own (or with its labels CSV), or the scan files themselves "
                        "without a zip.")
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=paths.imports_dir()))
    try:
        if zips:
            content = dict(zip(names, (data for _, data in files)))
            archive = folder / zips[0]
            archive.write_bytes(content[zips[0]])
            source = folder / (zips[0][: -len(".zip")] or "upload")
            extracted = datasets.extract_zip(archive, demo.zip_limits() if access.demo() else None)
            try:
                extracted.rename(source)
            except OSError:
                shutil.rmtree(extracted, ignore_errors=True)
                raise
            archive.unlink()
            for name in names:
                if name != zips[0]:
                    (folder / UPLOADED_LABELS).mkdir(exist_ok=True)
                    with open(folder / UPLOADED_LABELS / name, "xb") as handle:
                        handle.write(content[name])
            return folder, source
        source = folder / "uploaded files"
        source.mkdir()
        for name, (_, data) in zip(names, files):
            with open(source / name, "xb") as handle:
                handle.write(data)
        if len(names) == 1 and readers.has_suffix(source / names[0], readers.HDF5_SUFFIXES + readers.NPZ_SUFFIXES):
            return folder, source / names[0]
        return folder, source
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def uploaded_csvs(upload: Path | None) -> list[Path]:
    """The CSV files uploaded beside a zip (``stage_upload``), sorted by name."""
    if upload is None or not (Path(upload) / UPLOADED_LABELS).is_dir():
        return []
    return sorted(path for path in (Path(upload) / UPLOADED_LABELS).iterdir() if path.is_file())


def _is_upload_folder(folder: Path) -> bool:
    return folder.parent == paths.imports_dir().resolve() and folder.name.startswith((UPLOAD_PREFIX, UNZIPPED_PREFIX))


def discard_upload(folder: str | Path | None) -> None:
    """Remove a folder made by ``stage_upload`` (anything else is left alone)."""
    if folder is None:
        return
    folder = Path(folder).resolve()
    if _is_upload_folder(folder):
        shutil.rmtree(folder, ignore_errors=True)


def source_label(entry: dict[str, Any]) -> str:
    """Where an imported dataset came from: its server path, or "upload: NAME" for an upload; on a hosted
    demo only the source's name (nothing of the server's folders is shown to visitors)."""
    path = Path(entry["source"]["path"])
    if any(part.startswith(UPLOAD_PREFIX) for part in path.parts):
        return f"upload: {entry['source']['name']}"
    if access.demo():
        return f"server: {entry['source']['name']}"
    return str(path)


def remove_stale_uploads(max_age_s: float = UPLOAD_MAX_AGE_S) -> None:
    """Remove upload folders older than ``max_age_s`` (a tab closed while its preview was shown)."""
    now = time.time()
    for folder in paths.imports_dir().resolve().iterdir():
        try:
            if folder.is_dir() and _is_upload_folder(folder) and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


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


def parse_shape(text: str) -> tuple[int, ...] | None:
    """'32 64 64' or '32x64x64' -> (32, 64, 64); empty -> None (keep each volume's shape)."""
    parts = [part for part in re.split(r"[\s,x×]+", text.strip().lower()) if part]
    if not parts:
        return None
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise DataError(f"The target shape {text.strip()[:40]!r} is not three whole numbers D H W (e.g. 32 64 64).")
    return tuple(int(part) for part in parts)


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
            upload, source = stage_upload(files)
            label = ", ".join(str(name) for name, _ in files)
            zips = [str(name) for name, _ in files if str(name).lower().endswith(".zip")]
            suggested = default_dataset_name(zips[0] if zips else str(files[0][0]) if len(files) == 1
                                             else "uploaded-scans")
        else:
            if not (folder or "").strip():
                raise DataError("Type the path of a folder (or an HDF5 / NPZ file) on the server first.")
            source = datasets.check_import_path(folder.strip(), demo_mode=access.demo())
            label, suggested = str(source), default_dataset_name(source.name)
        options = import_options(values, source, uploaded=files is not None, beside=uploaded_csvs(upload))
        preview = datasets.preview_import(source, options).to_dict()
    except DataError as error:
        discard_upload(upload)
        if upload is not None and type(error) is DataError:  # name the upload, not its hidden folder
            sentence = _without_folder(str(error), upload)
            raise DataError(sentence[:1].upper() + sentence[1:]) from error
        raise
    except BaseException:
        discard_upload(upload)
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
def intensity_histogram_figure(edges: Sequence[float], counts_by_class: dict[str, Sequence[int]]) -> go.Figure:
    """Voxel intensity histogram, one step line per class (fraction of that class's voxels), log scale."""
    edges = np.asarray(edges, dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    figure = go.Figure()
    for class_name, counts in counts_by_class.items():
        counts = np.asarray(counts, dtype=float)
        fractions = counts / max(counts.sum(), 1.0)
        label = plotly_text(class_name)
        figure.add_trace(go.Scatter(
            x=centres, y=np.where(fractions > 0, fractions, np.nan), mode="lines", line_shape="hvh", name=label,
            hovertemplate=f"{label}<br>intensity %{{x:.3g}}: %{{y:.2%}}<extra></extra>",
        ))
    figure.update_layout(title="Voxel intensities", xaxis_title="intensity", yaxis_title="fraction of voxels",
                         height=280, margin=dict(t=40, b=30, l=50, r=10), legend=dict(title="class"))
    figure.update_yaxes(type="log")
    return figure


# ------------------------------------------------------------------ cached reads
def catalog_version(entry: dict[str, Any]) -> str:
    """What a browse cache is keyed on: an imported dataset's fingerprint (a re-import under the same
    name differs), a built-in's name (its default options never change)."""
    return str(entry.get("fingerprint") or entry["name"])


@st.cache_data(show_spinner="Reading the dataset...", max_entries=8)
def dataset_summary(name: str, version: str, data_root: str) -> dict[str, Any]:
    """Counts, a per-class voxel histogram and middle slices of a few samples per class (default options)."""
    dataset = datasets.load_dataset(name)
    labels = np.asarray(dataset.y)
    by_class = [np.flatnonzero(labels == index) for index in range(dataset.num_classes)]
    # A few volumes per class, spread over the class, copied out of the memory map one at a time.
    histogram_picks = {
        index: members[np.linspace(0, len(members) - 1, min(len(members), HISTOGRAM_VOLUMES_PER_CLASS)).astype(int)]
        for index, members in enumerate(by_class) if len(members)
    }
    samples = {index: np.stack([np.asarray(dataset.x[i], dtype=np.float32)[..., 0] for i in picks])
               for index, picks in histogram_picks.items()}
    low = min(float(volumes.min()) for volumes in samples.values())
    high = max(float(volumes.max()) for volumes in samples.values())
    edges = np.linspace(low, high if high > low else low + 1.0, HISTOGRAM_BINS + 1)
    histogram = {dataset.class_names[index]: np.histogram(volumes, bins=edges)[0].tolist()
                 for index, volumes in samples.items()}
    grid, grid_titles = [], []  # one row per class: middle axial slices, each titled "class · #sample"
    for index, members in enumerate(by_class[:GRID_MAX_CLASSES]):
        picks = [int(sample) for sample in members[:GRID_COLUMNS]]
        if picks:
            volumes = [np.asarray(dataset.x[sample], dtype=np.float32)[..., 0] for sample in picks]
            grid.append([volume[volume.shape[0] // 2] for volume in volumes])
            grid_titles.append([f"{shorten(dataset.class_names[index], 18)} · #{sample}" for sample in picks])
    split_codes = dataset.predefined_split
    return {
        "num_samples": int(len(labels)),
        "volume_shape": [int(n) for n in dataset.x.shape[1:]],
        "class_names": [str(name) for name in dataset.class_names],
        "class_counts": dataset.class_counts(),
        "num_groups": int(len(np.unique(dataset.groups))) if dataset.groups is not None else 0,
        "labels": labels.astype(int).tolist(),
        # By name (the labels CSV's group, the DICOM PatientID), not the internal group code.
        "groups": None if dataset.groups is None else [str(name) for name in dataset.group_labels()],
        "predefined": None if split_codes is None else int(np.sum(np.asarray(split_codes) >= 0)),
        "histogram_edges": edges.tolist(),
        "histogram": histogram,
        "grid": grid,
        "grid_titles": grid_titles,
    }


@st.cache_data(show_spinner=False, max_entries=32)
def sample_volume(name: str, version: str, data_root: str, index: int) -> np.ndarray:
    """One sample's first channel as a (D, H, W) float32 array."""
    dataset = datasets.load_dataset(name)
    return np.array(dataset.x[int(index)], dtype=np.float32)[..., 0]


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


def upload_key() -> str:
    """The uploader's key: ``data_upload``, then a new one after each import (which empties it)."""
    round_ = st.session_state.get("data_upload_round", 0)
    return "data_upload" if not round_ else f"data_upload_{round_}"


def next_upload_key() -> None:
    st.session_state["data_upload_round"] = st.session_state.get("data_upload_round", 0) + 1


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


def positive_class_choice(class_names: Sequence[str], default: str | None, key: str) -> str | None:
    """Two classes: a picker of the positive class, starting on ``default``; None (nothing drawn) otherwise."""
    names = [str(name) for name in class_names]
    if len(names) != 2:
        return None
    seed(key, default if default in names else names[1], lambda value: value in names)
    return st.selectbox(
        "Positive class", names, key=key,
        help="The class sensitivity, specificity, ROC / PR and the decision threshold are about (the finding, e.g. "
        "a lesion); guessed from the class names. Runs take it by default; the Train page can change it per run.",
    )


def positive_class_editor(entry: dict[str, Any], can_change: bool) -> None:
    """A two-class dataset's positive class: changeable (and saved) for an imported one, stated for a built-in."""
    name = entry["name"]
    if not entry.get("imported"):
        if entry.get("positive_class"):
            st.text(f"Positive class: {entry['positive_class']} (the Train page can choose the other class per run)")
        return
    chosen = positive_class_choice(entry["class_names"], entry.get("positive_class"), f"data_positive_{name}")
    if chosen is None or chosen == entry.get("positive_class"):
        return
    if st.button("Save the positive class", key="data_positive_save", disabled=not can_change):
        try:
            datasets.set_positive_class(name, chosen)
        except ERRORS as error:
            show_error(error)
        else:
            st.session_state["data_message"] = (
                "success", f"{name}: the positive class is now {chosen} for runs launched from here on "
                           "(runs already trained keep theirs).")
            st.rerun()


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


seed = state.seed  # one home for widget state (ui/state.py); import_form.seed stays for the Data page


def volume_viewer(volume: np.ndarray, sample_key: tuple, key: str) -> tuple[list[int], float, float]:
    """Level / window and one slider per plane, as on the Inspect page; returns (indices, level, width).

    A new sample starts at its default window and at its centre.
    """
    from ui import volumes as volume_ui

    low, high, level_default, width_default = volume_ui.window_defaults(volume)
    high = max(high, low + 1e-6)  # a constant volume still gets sliders
    span = high - low
    same_sample = st.session_state.get(f"{key}_viewer_sample") == sample_key
    st.session_state[f"{key}_viewer_sample"] = sample_key
    seed(f"{key}_level", float(level_default), lambda value: same_sample and low <= value <= high)
    seed(f"{key}_window", float(width_default), lambda value: same_sample and span / 100 <= value <= 2 * span)
    centre = volume_ui.focus(volume)
    for plane_name, axis in volume_ui.PLANES:
        seed(f"{key}_slice_{plane_name}", centre[axis], lambda value: same_sample)
    window_columns = st.columns(2)
    level = window_columns[0].slider("Level", low, high, step=span / 100, key=f"{key}_level")
    width = window_columns[1].slider("Window", span / 100, 2 * span, step=span / 100, key=f"{key}_window")
    slice_columns = st.columns(3)
    indices = [
        slice_columns[axis].slider(plane_name, 0, volume.shape[axis] - 1, key=f"{key}_slice_{plane_name}")
        if volume.shape[axis] > 1 else 0  # a slider needs two positions
        for plane_name, axis in volume_ui.PLANES
    ]
    return indices, level, width
