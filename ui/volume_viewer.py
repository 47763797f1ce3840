"""A volume's slice viewer widgets (Data and Predict pages): level / window and one slider per plane."""

from __future__ import annotations


import numpy as np
import streamlit as st

from ui import state


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
    state.seed(f"{key}_level", float(level_default), lambda value: same_sample and low <= value <= high)
    state.seed(f"{key}_window", float(width_default), lambda value: same_sample and span / 100 <= value <= 2 * span)
    centre = volume_ui.focus(volume)
    for plane_name, axis in volume_ui.PLANES:
        state.seed(f"{key}_slice_{plane_name}", centre[axis], lambda value: same_sample)
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
