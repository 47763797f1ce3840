"""Home: what the lab is, and a one-click sample run."""

import streamlit as st

from engine import jobs
from engine.config import DataConfig, ModelConfig, RunConfig, TrainingConfig
from engine.errors import LabError
from engine.store import open_store
from ui import access
from ui.text import markdown_text

# The demo: the 3D MNIST tutorial network on the built-in digits, a few epochs. 500 of the
# 1,797 source digits keep the first curve point about 7 s after the click on a 2-core CPU
# when the warm standby worker started below is ready (about 13 s with a cold worker, most of
# the difference being TensorFlow's start-up); Train offers the whole set.
DEMO_SOURCE_DIGITS = 500
DEMO_CONFIG = RunConfig(
    name="demo: digits3d + tutorial3d",
    data=DataConfig(dataset="digits3d", options={"num_samples": DEMO_SOURCE_DIGITS}),
    model=ModelConfig(architecture="tutorial3d"),
    training=TrainingConfig(epochs=3),
)

# A warm standby worker (TensorFlow already imported) takes the next launch, so the
# demo's first epoch comes seconds sooner; cheap when one is already waiting.
try:
    jobs.ensure_standby()
except (LabError, OSError):
    pass  # a cold worker still starts on Launch

st.title("Conv3D Lab")
st.markdown(
    """
Train Keras **Conv3D** classifiers on volumetric data, watch them learn, and find out why a run goes wrong.

1. **Train** — pick a dataset (built-ins work offline), an architecture and its knobs, and launch.
2. **Runs** — follow the loss and accuracy curves live, stop or resume runs, read the worker log.
3. **Inspect** — replay the confusion matrix epoch by epoch, ROC/PR curves, sensitivity and specificity,
   per-sample predictions shown as volumes with Grad-CAM overlays.

Training runs in a separate worker process: closing this tab does not stop it.
"""
)
if access.gate() == "open":
    st.caption("This lab is open: anyone who can reach it can launch, stop and delete runs and import data "
               "(set `lab_password` or `[auth]` in `.streamlit/secrets.toml` to require a sign-in for changes).")

with st.container(border=True):
    st.subheader("Try it: the sample run")
    st.markdown(
        f"The 3D MNIST tutorial CNN (`tutorial3d`) on `digits3d` (handwritten digits voxelised into 16³ "
        f"volumes; the first {DEMO_SOURCE_DIGITS} source digits), {DEMO_CONFIG.training.epochs} epochs. "
        "It takes well under a minute on a laptop CPU."
    )
    if st.button("Start the sample run", key="home_demo", type="primary", icon=":material/play_arrow:"):
        if not access.can_change():
            st.error(access.refusal(), icon=":material/lock:")
            st.stop()
        try:
            run_id = jobs.launch(DEMO_CONFIG.copy(), **access.engine_args())
        except LabError as e:
            st.error(markdown_text(e))
        else:
            st.switch_page("app_pages/runs.py", query_params={"runs": str(run_id)})

recent = open_store().list_runs(limit=5)
if recent:
    st.subheader("Recent runs")
    for run in recent:
        st.page_link(
            "app_pages/runs.py", label=f"{markdown_text(run.label)} — {run.status.label}",
            query_params={"runs": str(run.id)}, icon=":material/monitoring:",
        )
else:
    st.caption("No runs yet.")
