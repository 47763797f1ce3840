"""Engine reads the dashboard caches (``st.cache_data``): catalogs, previews, model descriptions.

Every function takes plain, hashable arguments and returns plain data, so the
cache key is exact and nothing TensorFlow-shaped crosses into the page.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import streamlit as st

from engine import datasets, jobs, models, paths, probe
from engine.hosting import demo
from engine.errors import LabError
from ui import access

# How many example volumes the dataset preview shows.
PREVIEW_SAMPLES = 4
# The Train page loads a preview by itself only when the dataset is cached or at most this big
# (samples x voxels x 4 bytes): generating 40 phantoms of 128^3 in the dashboard process took
# 9.9 s and wrote 321 MB, on every option change. Larger sets wait for the "Generate preview" button.
PREVIEW_AUTO_BYTES = 64 * 2**20


def dataset_catalog() -> list[dict[str, Any]]:
    """The built-ins and the imported datasets. Keyed on the imports folder's state, so a dataset imported
    or deleted (on the Data page or with the CLI) is listed at once, without a restart."""
    return _dataset_catalog(*imports_state())


def imports_state() -> tuple[str, int]:
    """(imports folder, its modification time): an import or delete renames an entry there, changing it."""
    folder = paths.imports_dir()
    return str(folder), folder.stat().st_mtime_ns


@st.cache_data(show_spinner=False, max_entries=8)
def _dataset_catalog(imports_folder: str, modified_ns: int) -> list[dict[str, Any]]:
    return datasets.list_datasets()


@st.cache_data(show_spinner=False)
def arch_catalog() -> list[dict[str, Any]]:
    return models.arch_catalog()


@st.cache_data(show_spinner="Loading the dataset preview...", max_entries=16)
def dataset_preview(name: str, options_json: str) -> dict[str, Any]:
    """Sample count, shape, class counts and the middle axial slice of a few samples (one per class first).

    ``options_json`` is the dataset options as sorted JSON (a hashable cache key).
    """
    dataset = datasets.load_dataset(name, json.loads(options_json))
    labels = np.asarray(dataset.y)
    picks: list[int] = []
    for class_index in range(dataset.num_classes):
        where = np.flatnonzero(labels == class_index)
        if len(where):
            picks.append(int(where[0]))
        if len(picks) == PREVIEW_SAMPLES:
            break
    slices = []
    for index in picks:
        volume = np.asarray(dataset.x[index])[..., 0]  # (D, H, W); copies one sample out of the memmap
        slices.append(volume[volume.shape[0] // 2])
    return {
        "num_samples": int(len(labels)),
        "volume_shape": [int(n) for n in dataset.x.shape[1:]],
        "num_classes": int(dataset.num_classes),
        "class_names": [str(c) for c in dataset.class_names],
        "class_counts": dataset.class_counts(),
        "num_groups": int(len(np.unique(dataset.groups))) if getattr(dataset, "groups", None) is not None else None,
        "slices": slices,
        "slice_titles": [str(dataset.class_names[labels[i]]) for i in picks],
    }


@st.cache_data(show_spinner="Building the model in a helper process (first time only)...", max_entries=64)
def describe_model(model_json: str, input_shape: tuple[int, ...], num_classes: int, batch_size: int) -> dict[str, Any]:
    """engine.probe.describe_model, cached; raises ConfigError/LabError with the engine's sentence."""
    return probe.describe_model(json.loads(model_json), tuple(input_shape), int(num_classes), int(batch_size))


@st.cache_data(show_spinner=False, ttl=300)
def device_memory() -> tuple[str, int | None]:
    """engine.jobs.device_memory(), cached: (device description, bytes) a run will train in."""
    return jobs.device_memory()


def dataset_facts(name: str, options: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """What the dataset will be, known without generating it (``datasets.dataset_info``), or an error sentence.

    Adds ``estimated_bytes`` (samples x voxels x 4) and ``auto_preview``: whether the page may load
    the preview without being asked (the set is cached or at most ``PREVIEW_AUTO_BYTES``). Not cached
    by Streamlit: the ``cached`` flag changes once the preview has been generated.
    """
    try:
        info = datasets.dataset_info(name, options)
    except LabError as e:
        return None, str(e)
    estimated = int(info["num_samples"]) * int(np.prod(info["volume_shape"])) * 4
    return {**info, "estimated_bytes": estimated,
            "auto_preview": bool(info.get("cached")) or estimated <= PREVIEW_AUTO_BYTES}, None


def preview_or_error(name: str, options: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        if access.demo():
            demo.check_generation(name, options)  # generated in this process: held to the demo's cap
        return dataset_preview(name, json.dumps(options, sort_keys=True)), None
    except LabError as e:
        return None, str(e)


@st.cache_data(show_spinner="Augmenting a few training volumes in a helper process (TensorFlow start-up)...",
               max_entries=16)
def augmentation_preview(config_json: str) -> dict[str, Any]:
    """engine.probe.augmentation_preview for this config (sorted JSON), cached; raises with the engine's sentence."""
    return probe.augmentation_preview(json.loads(config_json))
