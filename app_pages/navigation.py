"""The dashboard's pages: their files, titles, icons and URL paths. studio.py makes the
top bar from this table and app_pages/server.py a route per URL path."""

from __future__ import annotations

from typing import NamedTuple


class PageSpec(NamedTuple):
    file: str  # relative to the project root
    title: str
    icon: str
    url_path: str
    default: bool = False
    # Streamlit frontend chunks the page's first view draws with, loaded while the page
    # waits for the server on a full load (app_pages/server.py)
    chunks: tuple[str, ...] = ()


HOME, TRAIN, ANALYZE, RUNS = "app_pages/home.py", "app_pages/train.py", "app_pages/analyze.py", "app_pages/runs.py"
MONITOR = "app_pages/monitor.py"
COMPARE = "app_pages/compare.py"
EXPLAIN = "app_pages/errors.py"
PREDICT = "app_pages/predict.py"

PAGES = (
    PageSpec(HOME, "Home", ":material/home:", "home", default=True),
    PageSpec(TRAIN, "Train", ":material/model_training:", "train"),
    PageSpec(MONITOR, "Monitor", ":material/monitoring:", "monitor", chunks=("PlotlyChart",)),
    PageSpec(ANALYZE, "Analyze", ":material/grid_on:", "analyze", chunks=("PlotlyChart",)),
    PageSpec(EXPLAIN, "Explain", ":material/psychology_alt:", "explain", chunks=("PlotlyChart",)),
    PageSpec(COMPARE, "Compare", ":material/compare_arrows:", "compare", chunks=("PlotlyChart",)),
    PageSpec(PREDICT, "Predict", ":material/image_search:", "predict"),
    PageSpec(RUNS, "Runs", ":material/folder_open:", "runs"),
)
