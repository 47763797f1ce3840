"""The Train page's transfer-learning section: where the weights start, frozen blocks, the backbone rate,
and self-supervised pretraining. Returns plain ``training`` values (docs/transfer.md)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine import config as cfg
from engine.weights import warm_start
from engine.errors import LabError
from ui.text import markdown_text

SCRATCH, FROM_RUN, FROM_FILE = "Random weights", "A run", "A weights file"
# Backbone learning-rate fractions offered (1 = the same rate as the head).
BACKBONE_SCALES = (0.001, 0.01, 0.1, 0.3, 1.0)


def _default(key: str, value: Any) -> str:
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def transfer_section(start_points: list[dict[str, Any]], architecture: str, may_upload: bool) -> dict[str, Any]:
    """Start from scratch, a run (``start_points``: engine.weights.warm_start.start_points) or an uploaded file."""
    t = cfg.TrainingConfig()
    values: dict[str, Any] = {}
    values["pretext"] = "rotation" if st.toggle(
        "Self-supervised pretraining (rotation prediction; labels unused)", key=_default("train_pretext", False),
        help="Trains the encoder to tell which of four rotations was applied to each volume. Later runs start "
             "from it under 'Start from: A run'.",
    ) else "none"
    start = st.radio("Start from", (SCRATCH, FROM_RUN, FROM_FILE), key=_default("train_start_from", SCRATCH),
                     horizontal=True)
    if start == FROM_RUN:
        runs = [point for point in start_points if point["architecture"] == architecture]
        if not runs:
            st.info(f"No {architecture} run has a checkpoint yet; train or pretrain one first.")
            values["init_from"] = ""  # refused by validation with its sentence
        else:
            by_id = {point["id"]: point for point in runs}
            chosen = st.selectbox(
                "Run", list(by_id), key="train_init_run",
                format_func=lambda i: f"{by_id[i]['label']} ({by_id[i]['dataset']}"
                                      f"{', pretraining' if by_id[i]['pretraining'] else ''})",
            )
            values["init_from"] = f"run:{chosen}"
    elif start == FROM_FILE:
        upload = st.file_uploader("Weights file (.keras or .h5)", type=["keras", "h5", "hdf5"],
                                  key="train_init_file", disabled=not may_upload)
        values["init_from"] = ""
        if upload is not None:
            try:
                path = warm_start.save_upload(upload.name, upload.getvalue())
                rows = warm_start.layer_rows(path)
            except LabError as e:
                st.error(markdown_text(e), icon=":material/error:")
            else:
                values["init_from"] = str(path)
                st.caption(f"{len(rows)} layers with weights. Layers that match this model by name and shape are "
                           "loaded when the run starts; the run's log lists every layer that does not match.")
                st.dataframe(rows, key="train_init_layers", hide_index=True, height=160)
    if start == SCRATCH:
        return values
    freeze_column, scale_column = st.columns(2)
    values["freeze_blocks"] = int(freeze_column.number_input(
        "Freeze the first blocks", key=_default("train_freeze_blocks", t.freeze_blocks), step=1,
        min_value=0, max_value=warm_start.BLOCKS.get(architecture, 0),
        help="Their weights (and BatchNorm statistics) stay as loaded.",
    ))
    values["backbone_lr_scale"] = scale_column.select_slider(
        "Backbone learning rate (x the rate)", BACKBONE_SCALES,
        key=_default("train_backbone_lr_scale", t.backbone_lr_scale),
        help="The blocks learn at this fraction of the learning rate; the head at the full rate.",
    )
    return values
