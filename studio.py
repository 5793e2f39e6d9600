"""ResNet Studio's script: Streamlit runs it for each page view (app.py is the server,
`streamlit run app.py`, with studio_server.py's page routes). It sets up the page and the
top bar, then runs the chosen page."""

from __future__ import annotations

from pathlib import Path

# Before any page runs, whatever it imports: plotly looks pandas up in sys.modules without
# importing it, so while one session's page imported pandas for the first time, another
# session's live Monitor found it half-initialised and its charts failed ("partially
# initialized module 'pandas' has no attribute 'Series'", right after a server start).
import pandas  # noqa: F401
import streamlit as st

from app_pages import navigation

ROOT = Path(__file__).resolve().parent

# A file of ours, not a ":material/…:" icon, which the browser fetches from fonts.gstatic.com on
# every page load (machines without internet showed no icon).
st.set_page_config(page_title="ResNet Studio", page_icon=str(ROOT / "app_pages" / "favicon.png"), layout="wide")

PAGES = [st.Page(ROOT / p.file, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
         for p in navigation.PAGES]

st.navigation(PAGES, position="top").run()
