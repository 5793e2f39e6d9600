"""ResNet Studio: `streamlit run app.py`.

Configure, launch and watch CIFAR-10 ResNet training runs (each one its own process, see
resnet_core/dashboard/launcher.py), and dig into their mistakes. Folders: $RESNET_STUDIO_RUNS
(default ./checkpoints) for runs, $RESNET_STUDIO_DATA (default ./data) for CIFAR-10.
"""

from __future__ import annotations

from pathlib import Path

# Before any page runs, whatever it imports: plotly looks pandas up in sys.modules without
# importing it, so while one session's page imported pandas for the first time, another
# session's live Monitor found it half-initialised and its charts failed ("partially
# initialized module 'pandas' has no attribute 'Series'", right after a server start).
import pandas  # noqa: F401
import streamlit as st

ROOT = Path(__file__).resolve().parent

# A file of ours, not a ":material/…:" icon, which the browser fetches from fonts.gstatic.com on
# every page load (machines without internet showed no icon).
st.set_page_config(page_title="ResNet Studio", page_icon=str(ROOT / "app_pages" / "favicon.png"), layout="wide")

PAGES = [
    st.Page(ROOT / "app_pages" / "home.py", title="Home", icon=":material/home:", default=True, url_path="home"),
    st.Page(ROOT / "app_pages" / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page(ROOT / "app_pages" / "monitor.py", title="Monitor", icon=":material/monitoring:", url_path="monitor"),
    st.Page(ROOT / "app_pages" / "analyze.py", title="Analyze", icon=":material/grid_on:", url_path="analyze"),
    st.Page(ROOT / "app_pages" / "errors.py", title="Explain", icon=":material/psychology_alt:", url_path="explain"),
    st.Page(ROOT / "app_pages" / "compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(ROOT / "app_pages" / "predict.py", title="Predict", icon=":material/image_search:", url_path="predict"),
    st.Page(ROOT / "app_pages" / "runs.py", title="Runs", icon=":material/folder_open:", url_path="runs"),
]

st.navigation(PAGES, position="top").run()
