"""What app.py adds to Streamlit's own server (st.App, which `streamlit run app.py` serves):
a route per page that serves Streamlit's index.html with two additions that make a full
load of the page (a reload, a deep link such as /monitor?run=...) faster, and a browser
tab opened on start. It is server code, not a page, so it lives beside app.py and not in
app_pages/; it reaches into Streamlit's internals (file_util, server_util, cli_util, the
frontend's index.html and chunk file names), each of which tests/test_studio_server.py
checks by name, so that a Streamlit upgrade that moves one fails there and says what to fix.

1. Where the server is. Opened at /monitor, Streamlit's frontend cannot tell a page from
   the path the app is served under, so it asks /monitor/_stcore/health first, gets a 404,
   waits 100 ms and only then asks /_stcore/health. A script sets
   window.__streamlit.BACKEND_BASE_URL, the frontend's setting for a server that is not at
   the page's own path, to the page's parent: the address it would have tried second.
   Measured in headless Chromium, 200 runs, two servers, loads alternated (paired median
   differences): Train -0.05 s, Analyze -0.10, Explain -0.11, Runs -0.14, Compare -0.11.
2. The page's big frontend chunks, early. Streamlit's frontend imports the code of an
   element (Plotly: 4.7 MB) only when the first such element arrives from the script run;
   evaluating the Plotly chunk then took 150 ms of the main thread, on the critical path.
   A module script imports the chunks the page's first view needs (navigation.PageSpec.
   chunks) as soon as the HTML is parsed, while the frontend waits for the server. Paired
   medians: Analyze -0.10 s idle and -0.41 s while a CPU run trained, Monitor -0.11 and
   -0.07, Explain -0.07 and -0.19.
Home, the default page, lives at "/" (no parent to try) and is served as before.

3. plotly.js for the charts of our own that draw it (app_pages/area_select_chart.py), from
   the file the plotly package ships: the browser cannot fetch it anywhere else offline."""

from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Sequence

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route
from streamlit import cli_util, config, file_util
from streamlit.web.server import server_address_is_unix_socket, server_util

from app_pages.area_select_chart import PLOTLY_JS_FILE, PLOTLY_JS_ROUTE
from app_pages.navigation import PAGES

# The page's parent path, from the browser's own location, so it holds behind a proxy and
# under server.baseUrlPath alike.
BACKEND_HINT = ("<script>window.__streamlit = Object.assign({BACKEND_BASE_URL: "
                "location.origin + location.pathname.replace(/\\/[^/]*\\/?$/, '/')}, window.__streamlit)</script>")
_HEAD = re.compile(r"<head>", re.IGNORECASE)
_LOGGER = logging.getLogger(__name__)


def chunk_files(js_dir: Path, names: tuple[str, ...]) -> list[str]:
    """The installed frontend's file of each named chunk ("PlotlyChart" ->
    "PlotlyChart.D9Z0_fxz.js"; the suffix changes with each Streamlit release); a name
    with no file is left out."""
    found = (sorted(p.name for p in js_dir.glob(f"{name}.*.js")) for name in names)
    return [files[0] for files in found if files]


def page_html(index_html: str, chunks: Sequence[str] = ()) -> str:
    """Streamlit's index.html with the backend hint first in <head> and, last in it, a
    module script that imports these chunks (paths relative to the page, as the
    index's own scripts are)."""
    html, n = _HEAD.subn("<head>" + BACKEND_HINT, index_html, count=1)
    if n != 1 or "</head>" not in html:
        raise ValueError("Streamlit's index.html has no <head>")
    if chunks:
        imports = "".join(f'import("./static/js/{c}");' for c in chunks)
        html = html.replace("</head>", f'<script type="module">{imports}</script></head>', 1)
    return html


def _prefix(base_url_path: str | None) -> str:
    base = (config.get_option("server.baseUrlPath") if base_url_path is None else base_url_path).strip("/")
    return f"/{base}" if base else ""


def plotly_js_route(base_url_path: str | None = None) -> Route:
    """plotly.js at PLOTLY_JS_ROUTE (under server.baseUrlPath); its path names its version,
    so a browser keeps it."""
    async def endpoint(request: Request) -> FileResponse:
        return FileResponse(PLOTLY_JS_FILE, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})
    return Route(f"{_prefix(base_url_path)}/{PLOTLY_JS_ROUTE}", endpoint, methods=["GET", "HEAD"])


def page_routes(base_url_path: str | None = None) -> list[Route]:
    """A GET route per page URL but the default page's (under server.baseUrlPath) that
    answers with that page's index.html, made once from the installed Streamlit's; none
    (with a warning) when that file cannot be read or has no <head>."""
    static = Path(file_util.get_static_dir())
    try:
        index = (static / "index.html").read_text(encoding="utf-8")
        pages = {page.url_path: page_html(index, chunk_files(static / "static" / "js", page.chunks))
                 for page in PAGES if not page.default}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        # A Streamlit whose page these routes cannot amend still serves its own, only slower.
        _LOGGER.warning("ResNet Studio serves Streamlit's pages unchanged: %s", e)
        return []
    prefix = _prefix(base_url_path)

    def answer(html: str):
        async def endpoint(request: Request) -> HTMLResponse:
            return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
        return endpoint

    return [Route(f"{prefix}/{url_path}", answer(html), methods=["GET", "HEAD"]) for url_path, html in pages.items()]


def _browser_address() -> str | None:
    """The address a browser tab opened on start goes to, as plain `streamlit run` picks it
    (streamlit/web/bootstrap.py); None: open none (server.headless, or a unix socket)."""
    if config.get_option("server.headless"):
        return None
    if config.is_manually_set("browser.serverAddress"):
        return config.get_option("browser.serverAddress")
    if config.is_manually_set("server.address"):
        if server_address_is_unix_socket():
            return None
        return server_util.get_display_address(config.get_option("server.address"))
    return "localhost"


@asynccontextmanager
async def open_browser(app):
    """Open the dashboard in a browser tab on start, as plain `streamlit run` does (an
    st.App does not)."""
    address = _browser_address()
    if address is not None:
        cli_util.open_browser(server_util.get_url(address))
    yield
