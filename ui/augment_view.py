"""The Train page's augmentation preview: the first training volumes of epoch 1, before and after augmentation.

The volumes come from the training pipeline itself, run in a helper process
(``engine.probe.augmentation_preview``): the same split, shuffle, seeds and
ops as the run will use. It starts on a click (TensorFlow's start-up takes
seconds) and then follows every change of the data or augmentation settings.
"""

from __future__ import annotations

import json

import streamlit as st

from engine import probe
from engine.config import RunConfig
from engine.errors import LabError
from ui import cached, figures
from ui.text import markdown_text

ASKED_KEY = "_train_augment_preview_asked"


def preview_panel(config: RunConfig | None, ready: bool) -> None:
    """The subheader, and the preview or the one thing that stops it (``ready``: the config is valid and
    the dataset preview loaded, so the dataset exists)."""
    st.subheader("Augmentation preview")
    if config is None or not ready:
        st.info("The augmentation preview needs a valid configuration and a dataset that loads.")
        return
    if not config.training.augmentations:
        st.info("Pick at least one augmentation to preview it.")
        return
    if not st.session_state.get(ASKED_KEY):
        st.caption("The first training volumes of epoch 1 before and after augmentation, computed by the training "
                   "pipeline itself in a helper process (a few seconds).")
        if st.button("Preview augmentation", key="train_augment_preview", icon=":material/visibility:"):
            st.session_state[ASKED_KEY] = True
            st.rerun()
        return
    try:
        preview = cached.augmentation_preview(json.dumps(probe.augmentation_inputs(config), sort_keys=True))
    except LabError as e:
        st.error(markdown_text(e))
        return
    st.plotly_chart(
        figures.slice_grid_figure(list(zip(preview["before"], preview["after"])), row_titles=preview["labels"],
                                  column_titles=["before", "after"], window="row"),
        key="train_augment_preview_chart", config={"displayModeBar": False},
    )
    st.caption(
        f"Middle axial slice (index {preview['slice']}) of the first {len(preview['labels'])} training volumes of "
        f"epoch 1 (run seed {config.training.seed}), normalised ({config.data.normalization}) and augmented with "
        f"{', '.join(config.training.augmentations)}, as the network gets them; the two slices of a row share "
        "one grey scale."
    )
