"""ResNet Studio: `streamlit run app.py`.

Configure, launch and watch CIFAR-10 ResNet training runs (each one its own process, see
resnet_core/dashboard/launcher.py), and dig into their mistakes. Folders: $RESNET_STUDIO_RUNS
(default ./checkpoints) for runs, $RESNET_STUDIO_DATA (default ./data) for CIFAR-10.

This file is the server: Streamlit's st.App, which `streamlit run` finds here and serves
with the usual flags and .streamlit/config.toml (read before this file is imported: start
it with `streamlit run`). studio.py is the app's script, which Streamlit runs for each
page view. studio_server.py says why the server has routes of its own.
"""

import streamlit as st

from studio_server import open_browser, page_routes, plotly_js_route

app = st.App("studio.py", routes=[*page_routes(), plotly_js_route()], lifespan=open_browser)
