"""A Plotly chart on which the user draws a box or a freeform area (plotly's shape drawing,
dragmode "drawrect" / "drawclosedpath"), and the areas drawn reach the script as a few
numbers: what the data map needs to open the images inside them
(resnet_core.dashboard.data_map_selection finds those from the images' own coordinates).

Why not st.plotly_chart's box and lasso selection: with it, the browser sent every selected
point (about 157 bytes each, 7.8 MB for all of the data map's 50,000 images) and took over a
second to build that before the script ran; and plotly restyled the 50,000 points as
selected or not, 0.4 s of the browser's main thread (headless Chromium, software WebGL),
before the browser's message went out. Boxes on the map of 50,000 images then opened their
gallery in 0.97 s from the mouse's release (median; 1.9 s for a box over all of it, quiet
machine); drawn here, 0.27 s (median of 15, 0.41 s the most), quiet machine
(tests/data_map_timings.py --browser --reloads 5).

The chart is a Streamlit component (st.components.v2) whose script, area_select_chart.js,
draws the figure with plotly.js: the file the plotly package ships, which app.py's server
serves at PLOTLY_JS_ROUTE (studio_server.py), loaded once a page. The script passes back
the areas it keeps, which the chart draws again (after a Clear, none)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import plotly
import plotly.graph_objects as go
import streamlit as st
from plotly.offline import get_plotlyjs_version

from resnet_core.dashboard.data_map_selection import Area

# The version in the path: a browser may keep the file as long as it likes.
PLOTLY_JS_ROUTE = f"_studio/plotly-{get_plotlyjs_version()}.min.js"
PLOTLY_JS_FILE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Drawing replaces box and lasso select in the mode bar; and no "Share chart..." (plotly.js 4
# offers to upload the chart to Plotly Cloud; st.plotly_chart's bundled plotly.js has no such button).
MODE_BAR = {"displaylogo": False, "modeBarButtonsToAdd": ["drawrect", "drawclosedpath"],
            "modeBarButtonsToRemove": ["select2d", "lasso2d", "sendChartToCloud"]}


def plotly_component(name: str, script: Path):
    """A component (st.components.v2) whose script draws with plotly.js: script's module,
    after plotly_component.js (plotly.js loaded once a page from PLOTLY_JS_ROUTE, the
    page's theme)."""
    shared = Path(__file__).with_name("plotly_component.js").read_text(encoding="utf-8")
    return st.components.v2.component(name, js=shared + script.read_text(encoding="utf-8"),
                                      isolate_styles=False)  # plotly.js styles its mode bar from the page's <head>


_chart = plotly_component("rs_area_select_chart", Path(__file__).with_suffix(".js"))


def plotly_js_url() -> str:
    """The route's path from the server's root, under server.baseUrlPath."""
    base = st.get_option("server.baseUrlPath").strip("/")
    return f"/{base}/{PLOTLY_JS_ROUTE}" if base else f"/{PLOTLY_JS_ROUTE}"


def area_select_chart(fig: go.Figure, key: str, on_select: Callable[[], None], areas: Sequence[Area] = ()) -> None:
    """Draw fig (its dragmode says what a drag draws) with areas drawn on it. When the user
    draws an area, on_select runs with st.session_state[key].selection
    = {"box": [{"x": [x0, x1], "y": [y0, y1]}, ...], "lasso": [{"x": [...], "y": [...]}, ...]}
    (the shape of st.plotly_chart's selection event): the new area, which replaces those
    before it."""
    _chart(key=key, data={"figure": fig.to_json(), "config": MODE_BAR, "plotly_url": plotly_js_url(),
                          "areas": [asdict(a) for a in areas]},
           on_selection_change=on_select)
