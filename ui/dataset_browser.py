"""The Data page's dataset browser: a dataset's summary (counts, intensity histogram, a grid of middle
slices) read once per version, one sample's volume, and the positive class of a two-class dataset.

User strings (dataset, class and file names) are shown as text; figures are drawn by ui.figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from engine import datasets
from ui import access, state, uploads
from ui.text import shorten
from ui.import_form import ERRORS, show_error


# The browser's sample: at most this many volumes per class feed the intensity histogram ...
HISTOGRAM_VOLUMES_PER_CLASS = 32
HISTOGRAM_BINS = 60
# ... and the grid of middle slices shows this many samples per class, for at most this many classes.
GRID_COLUMNS = 6
GRID_MAX_CLASSES = 10


def source_label(entry: dict[str, Any]) -> str:
    """Where an imported dataset came from: its server path, or "upload: NAME" for an upload; on a hosted
    demo only the source's name (nothing of the server's folders is shown to visitors)."""
    path = Path(entry["source"]["path"])
    if any(part.startswith(uploads.UPLOAD_PREFIX) for part in path.parts):
        return f"upload: {entry['source']['name']}"
    if access.demo():
        return f"server: {entry['source']['name']}"
    return str(path)


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
    group_names = dataset.group_labels()
    return {
        "num_samples": int(len(labels)),
        "volume_shape": [int(n) for n in dataset.x.shape[1:]],
        "class_names": [str(name) for name in dataset.class_names],
        "class_counts": dataset.class_counts(),
        "num_groups": int(len(np.unique(dataset.groups))) if dataset.groups is not None else 0,
        "labels": labels.astype(int).tolist(),
        # By name (the labels CSV's group, the DICOM PatientID), not the internal group code.
        "groups": None if group_names is None else [str(name) for name in group_names],
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


def positive_class_choice(class_names: Sequence[str], default: str | None, key: str) -> str | None:
    """Two classes: a picker of the positive class, starting on ``default``; None (nothing drawn) otherwise."""
    names = [str(name) for name in class_names]
    if len(names) != 2:
        return None
    state.seed(key, default if default in names else names[1], lambda value: value in names)
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
