"""Predict: a new scan through a finished run (or a group's ensemble), with its saliency and test-time spread.

The prediction runs ``python -m engine predict ... --json`` in a subprocess
(TensorFlow never loads in the dashboard). The upload is deleted as soon as it
is predicted; the result stays in this session only and never joins a dataset.
"""

import streamlit as st

from engine.inference import client
from engine.store import open_store
from ui import access, predict_view, uploads
from ui.text import markdown_text

st.title("Predict")
uploads.remove_stale_uploads()
store = open_store()
models = client.models(store)
pinned = client.find_model(store, access.demo_settings().model)
if not models:
    st.info("No run has finished yet. Train one (Train page); a finished run can predict new scans here.",
            icon=":material/info:")
    st.stop()
model = predict_view.pick_model(models, pinned)
files = st.file_uploader("A scan: a DICOM series (its files, or a zip of its folder), a NIfTI file, or an HDF5 / "
                         "NPZ file of volumes", accept_multiple_files=True, key="predict_upload")
options = st.columns(2)
views = client.max_tta(model)
if views > 1:
    tta = options[0].slider("Test-time views", 1, views, 1, key="predict_tta",
                            help="The mean and spread over the flips / rotations the run's training augmentation used.")
else:
    tta = 1
    options[0].caption("No test-time views: the run was trained without flip or rotate90 augmentation.")
saliency = options[1].toggle("Saliency map (HiResCAM)", value=True, key="predict_saliency")
if st.button("Predict", key="predict_run", type="primary", icon=":material/online_prediction:", disabled=not files):
    try:
        with st.spinner("Predicting (the model loads in a subprocess: a few seconds)..."):
            st.session_state["predict_result"] = predict_view.run_prediction(model, files, tta, saliency)
    except predict_view.ERRORS as error:
        st.session_state.pop("predict_result", None)
        st.error(markdown_text(error), icon=":material/error:")

result = st.session_state.get("predict_result")
if not result or result["model"] != model.key:
    st.stop()
for path, why in result["report"]["refused"].items():
    st.warning(markdown_text(f"{path} was not predicted: it {why}."), icon=":material/block:")
cases = result["report"]["cases"]
position = 0
if len(cases) > 1:
    position = st.selectbox("Scan", range(len(cases)), key="predict_case",
                            format_func=lambda index: cases[index]["path"])
predict_view.show_case(result, position, client.validation_reference(store, model))
