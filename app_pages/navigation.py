"""The dashboard's pages: their files, titles, icons and URL paths. studio.py makes the
top bar from this table and studio_server.py a route per URL path."""

from __future__ import annotations

from typing import NamedTuple


class PageSpec(NamedTuple):
    file: str  # relative to the project root
    title: str
    icon: str
    url_path: str
    default: bool = False
    # Streamlit frontend chunks the page's first view draws with, imported while the page
    # waits for the server on a full load (studio_server.py). Plotly's (4.7 MB) gained most;
    # the widgets' small chunks a little (paired A/B, 8 loads each, idle / while a CPU run
    # trained: Train -0.05 and -0.01 / -0.12 and -0.04 s, Monitor -0.01 / -0.08), and
    # Streamlit's table chunk (DataFrame) nothing, so it is not listed.
    chunks: tuple[str, ...] = ()


HOME, TRAIN, ANALYZE, RUNS = "app_pages/home.py", "app_pages/train.py", "app_pages/analyze.py", "app_pages/runs.py"
MONITOR = "app_pages/monitor.py"
COMPARE = "app_pages/compare.py"
EXPLAIN = "app_pages/explain.py"
PREDICT = "app_pages/predict.py"

PAGES = (
    PageSpec(HOME, "Home", ":material/home:", "home", default=True),
    PageSpec(TRAIN, "Train", ":material/model_training:", "train",
             chunks=("Selectbox", "NumberInput", "TextInput", "Checkbox", "ButtonGroup", "Button", "Metric")),
    PageSpec(MONITOR, "Monitor", ":material/monitoring:", "monitor",
             chunks=("PlotlyChart", "Selectbox", "Checkbox", "Slider", "Radio", "Metric", "Progress")),
    PageSpec(ANALYZE, "Analyze", ":material/grid_on:", "analyze", chunks=("PlotlyChart",)),
    PageSpec(EXPLAIN, "Explain", ":material/psychology_alt:", "explain", chunks=("PlotlyChart",)),
    PageSpec(COMPARE, "Compare", ":material/compare_arrows:", "compare", chunks=("PlotlyChart",)),
    PageSpec(PREDICT, "Predict", ":material/image_search:", "predict"),
    PageSpec(RUNS, "Runs", ":material/folder_open:", "runs"),
)
