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


HOME, TRAIN, ANALYZE, RUNS = "app_pages/home.py", "app_pages/train.py", "app_pages/analyze.py", "app_pages/runs.py"
MONITOR = "app_pages/monitor.py"
COMPARE = "app_pages/compare.py"
EXPLAIN = "app_pages/errors.py"
PREDICT = "app_pages/predict.py"

PAGES = (
    PageSpec(HOME, "Home", ":material/home:", "home", default=True),
    PageSpec(TRAIN, "Train", ":material/model_training:", "train"),
    PageSpec(MONITOR, "Monitor", ":material/monitoring:", "monitor"),
    PageSpec(ANALYZE, "Analyze", ":material/grid_on:", "analyze"),
    PageSpec(EXPLAIN, "Explain", ":material/psychology_alt:", "explain"),
    PageSpec(COMPARE, "Compare", ":material/compare_arrows:", "compare"),
    PageSpec(PREDICT, "Predict", ":material/image_search:", "predict"),
    PageSpec(RUNS, "Runs", ":material/folder_open:", "runs"),
)
