"""Conv3D Lab dashboard: page config and navigation (the pages live in app_pages/)."""

from pathlib import Path

import streamlit as st

from engine.hosting import demo
from engine.errors import LabError
from ui import access
from ui.text import markdown_text

# The tab icon is a file served by the lab: a ":material/...:" page icon makes the browser fetch an SVG
# from fonts.gstatic.com, a third-party request on every visit that fails on a closed network.
FAVICON = Path(__file__).parent / "ui" / "favicon.png"
st.set_page_config(page_title="Conv3D Lab", page_icon=str(FAVICON), layout="wide")

PAGES_DIR = Path(__file__).parent / "app_pages"
# (file, title, icon) in menu order; pages written later join when their file exists.
PAGES = (
    ("home.py", "Home", ":material/home:"),
    ("data.py", "Data", ":material/database:"),
    ("train.py", "Train", ":material/tune:"),
    ("runs.py", "Runs", ":material/monitoring:"),
    ("inspect.py", "Inspect", ":material/search_insights:"),
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("sweeps.py", "Sweeps", ":material/grid_view:"),
    ("predict.py", "Predict", ":material/online_prediction:"),
)
# A hosted demo that pins a model to try (CONV3D_LAB_DEMO_MODEL) lands its visitors on Predict.
try:
    LANDING = "predict.py" if access.demo_settings().model else "home.py"
except LabError as e:  # a demo setting that is not a number: the sentence names it and where it was set
    st.error(markdown_text(e), icon=":material/error:")
    st.stop()

if access.share_token() is not None:
    # A read-only share link (?share=TOKEN): exactly its view, to anyone, whatever the gate; checked on every
    # run, so it closes at its expiry or revocation. Nothing else of the lab is reachable from this session.
    try:
        shared = access.shared_view()
        st.navigation([st.Page("app_pages/shared.py", title=shared.title, icon=":material/share:", default=True)],
                      position="hidden").run()
    except LabError as e:  # an altered, expired or revoked link; a shared run deleted since
        st.error(markdown_text(e), icon=":material/link_off:")
    st.stop()
if not access.may_view():  # a private lab: nothing but the sign-in or the password field
    access.remember_browser()  # the password throttle counts this browser across its sessions
    access.sidebar_login()
    st.title("Conv3D Lab")
    st.info(access.refusal_to_view(), icon=":material/lock:")
    st.stop()

navigation = st.navigation(
    [
        st.Page(f"app_pages/{file}", title=title, icon=icon, default=file == LANDING)
        for file, title, icon in PAGES
        if (PAGES_DIR / file).exists()
    ]
)
access.remember_browser()
access.sidebar_login()
if access.demo():
    st.info(demo.limits_text(), icon=":material/public:")
try:
    navigation.run()
except LabError as e:
    # A problem the person can fix (a database that cannot be opened, a workspace that is a file):
    # the engine's sentence, instead of Streamlit's redacted error.
    st.error(markdown_text(e), icon=":material/error:")  # a sentence that may quote paths and URLs: as text
