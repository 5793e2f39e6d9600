"""studio_server.py: the page routes that serve index.html with the backend hint and the
early chunk imports, and the browser opened on start."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from pathlib import Path

import plotly.offline
import pytest
import streamlit
from starlette.routing import Match
from streamlit import file_util

import studio_server
from app_pages import navigation

JS_DIR = Path(file_util.get_static_dir(), "static", "js")

# Every Streamlit internal studio_server.py (and app.py) calls, with the arguments it passes:
# (module, attribute, a call's arguments, who uses it). Not Streamlit's public API, so an
# upgrade may move or reshape any of them; the test below names the one that went.
INTERNALS = [
    ("streamlit", "App", ("studio.py",), {"routes": [], "lifespan": None}, "app.py"),
    ("streamlit.file_util", "get_static_dir", (), {}, "page_routes: the frontend's index.html and chunks"),
    ("streamlit.config", "get_option", ("server.baseUrlPath",), {}, "page_routes, _browser_address"),
    ("streamlit.config", "is_manually_set", ("server.address",), {}, "_browser_address"),
    ("streamlit.web.server", "server_address_is_unix_socket", (), {}, "_browser_address"),
    ("streamlit.web.server.server_util", "get_display_address", ("0.0.0.0",), {}, "_browser_address"),
    ("streamlit.web.server.server_util", "get_url", ("localhost",), {}, "open_browser"),
    ("streamlit.cli_util", "open_browser", ("http://localhost:8501",), {}, "open_browser"),
]
# The config options it reads, as `streamlit run` reads them (streamlit/web/bootstrap.py).
OPTIONS = ["server.baseUrlPath", "server.headless", "server.address", "browser.serverAddress",
           "browser.serverPort"]


def _get(routes, path: str) -> tuple[int, dict[str, str], str]:
    """Answer a GET of path from the first route that matches it, as the server would."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"run=x", "headers": [], "scheme": "http", "server": ("localhost", 80)}
    route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
    if route is None:
        return 404, {}, ""
    sent: list[dict] = []
    asked: list[bool] = []

    async def receive():  # the request, then a client that stays connected (a file's answer listens)
        if asked:
            await asyncio.Event().wait()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(route.handle(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]).decode()


@pytest.mark.parametrize("module, name, args, kwargs, user", INTERNALS, ids=[f"{m}.{n}" for m, n, *_ in INTERNALS])
def test_each_streamlit_internal_the_server_calls_is_still_there(module, name, args, kwargs, user):
    fix = (f"Streamlit {streamlit.__version__} moved or reshaped {module}.{name}, which studio_server.py's {user} "
           f"calls (it was written against Streamlit 1.67): find where it went (the server code of `streamlit run`, "
           f"streamlit/web/bootstrap.py, does the same job) and update studio_server.py")
    try:
        target = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{fix} ({e})")
    assert callable(target), fix
    try:
        inspect.signature(target).bind(*args, **kwargs)
    except TypeError as e:
        pytest.fail(f"{fix} (it no longer takes {args} {kwargs}: {e})")


@pytest.mark.parametrize("option", OPTIONS)
def test_each_config_option_the_server_reads_is_still_defined(option):
    try:
        studio_server.config.get_option(option)
    except RuntimeError as e:
        pytest.fail(f"Streamlit {streamlit.__version__} has no config option {option}, which studio_server.py "
                    f"reads to place its routes and open the browser as `streamlit run` does: update it ({e})")


def test_the_installed_frontend_has_the_files_the_routes_amend():
    """The routes read static/index.html (and insert into its <head>), and import chunks
    named static/js/<Name>.<hash>.js; a frontend laid out otherwise would leave the pages
    unchanged (a warning), and this test says what to fix."""
    static = Path(file_util.get_static_dir())
    fix = f"Streamlit {streamlit.__version__}'s frontend changed: update studio_server.page_routes and chunk_files"
    index = static / "index.html"
    assert index.is_file(), f"{fix}: no {index}"
    assert "<head>" in index.read_text(encoding="utf-8").lower(), f"{fix}: {index} has no <head>"
    assert list(JS_DIR.glob("index.*.js")), f"{fix}: no bundle {JS_DIR}/index.*.js"
    for page in navigation.PAGES:
        missing = [c for c in page.chunks if not studio_server.chunk_files(JS_DIR, (c,))]
        assert not missing, (f"{fix}: no {JS_DIR}/<Name>.*.js for {missing} (the {page.title} page's "
                             f"navigation.PageSpec.chunks): rename or drop them")


def test_every_page_but_the_default_answers_with_its_hinted_index():
    routes = studio_server.page_routes("")
    pages = [p for p in navigation.PAGES if not p.default]
    assert len(routes) == len(pages) == len(navigation.PAGES) - 1
    for page in pages:
        status, headers, body = _get(routes, f"/{page.url_path}")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert headers["cache-control"] == "no-cache"  # a Streamlit upgrade must not meet a stale page
        hint = studio_server.BACKEND_HINT
        assert body.count(hint) == 1 and body.index(hint) < body.index("</head>")
        assert "static/js/index." in body  # the rest is Streamlit's own page, which loads its bundle
        early = [f"./static/js/{f}" for f in studio_server.chunk_files(JS_DIR, page.chunks)]
        assert len(early) == len(page.chunks)  # each named chunk is in the installed frontend
        for src in early:
            assert f'import("{src}")' in body and body.index(f'import("{src}")') < body.index("</head>")
        assert ("<script type=\"module\">import(" in body) == bool(page.chunks)
    # Streamlit keeps the root (the default page), its files and its own routes.
    for path in ("/", "/home", "/favicon.png", "/manifest.json", "/_stcore/health", "/train/_stcore/health"):
        assert _get(routes, path)[0] == 404, path


def test_the_chart_pages_import_plotly_early():
    charts = {p.url_path for p in navigation.PAGES if "PlotlyChart" in p.chunks}
    assert charts == {"monitor", "analyze", "explain", "compare"}
    plotly = studio_server.chunk_files(JS_DIR, ("PlotlyChart",))
    assert len(plotly) == 1 and plotly[0].startswith("PlotlyChart.") and (JS_DIR / plotly[0]).stat().st_size > 1e6


def test_chunk_files_finds_each_named_chunk_and_skips_a_missing_one(tmp_path):
    for name in ("PlotlyChart.abc.js", "DataFrame.x-1.js", "PlotlyChartExtra.js", "Plotly.css"):
        (tmp_path / name).write_text("")
    assert studio_server.chunk_files(tmp_path, ("PlotlyChart", "Nope", "DataFrame")) == ["PlotlyChart.abc.js",
                                                                                 "DataFrame.x-1.js"]


@pytest.mark.parametrize("index", [None, "<html><body>no head</body></html>", b"\xff\xfe<head>"])
def test_an_index_the_routes_cannot_amend_leaves_streamlits_pages_as_they_are(tmp_path, monkeypatch, caplog, index):
    """A Streamlit without an index.html, or with one that has no <head> or is not UTF-8:
    no routes (its own pages then load, 100 ms slower) and a warning, not a server that
    fails to start."""
    if index is not None:
        (tmp_path / "index.html").write_bytes(index.encode() if isinstance(index, str) else index)
    monkeypatch.setattr(studio_server.file_util, "get_static_dir", lambda: str(tmp_path))
    with caplog.at_level("WARNING", logger=studio_server.__name__):
        assert studio_server.page_routes("") == []
    assert "serves Streamlit's pages unchanged" in caplog.text


def test_under_a_base_url_path_the_routes_move_with_it():
    routes = studio_server.page_routes("/studio/")
    assert _get(routes, "/studio/monitor")[0] == 200
    assert _get(routes, "/monitor")[0] == 404


def test_the_hint_goes_first_into_head_once_and_a_page_without_head_is_refused():
    html = studio_server.page_html("<html><HEAD><title>t</title></head><body><head></head></body></html>", ["A.1.js"])
    assert html.startswith("<html><head>" + studio_server.BACKEND_HINT + "<title>")
    assert html.count(studio_server.BACKEND_HINT) == 1
    assert '<script type="module">import("./static/js/A.1.js");</script></head><body>' in html
    with pytest.raises(ValueError, match="no <head>"):
        studio_server.page_html("<html><body></body></html>")


def test_streamlits_frontend_still_reads_the_setting_the_hint_gives():
    """The hint is only worth its route while the installed frontend reads
    window.__streamlit.BACKEND_BASE_URL; a Streamlit that stops reading it loads pages as
    before (100 ms slower), and this test says so."""
    bundle = "".join(p.read_text(encoding="utf-8", errors="replace") for p in JS_DIR.glob("index.*.js"))
    assert "window.__streamlit" in bundle and "BACKEND_BASE_URL" in bundle


@pytest.mark.parametrize("headless", [False, True])
def test_the_browser_opens_on_start_unless_headless(monkeypatch, headless):
    opened: list[str] = []
    options = {"server.headless": headless, "browser.serverPort": 8123, "server.baseUrlPath": ""}
    monkeypatch.setattr(studio_server.config, "get_option", lambda key: options.get(key))
    monkeypatch.setattr(studio_server.config, "is_manually_set", lambda key: False)
    monkeypatch.setattr(studio_server.cli_util, "open_browser", opened.append)

    async def start():
        async with studio_server.open_browser(None):
            pass

    asyncio.run(start())
    assert opened == ([] if headless else ["http://localhost:8123"])


def test_no_browser_for_a_unix_socket_address(monkeypatch):
    options = {"server.headless": False, "server.address": "unix:///tmp/studio.sock"}
    monkeypatch.setattr(studio_server.config, "get_option", lambda key: options.get(key))
    monkeypatch.setattr(studio_server.config, "is_manually_set", lambda key: key == "server.address")
    assert studio_server._browser_address() is None
    options["server.address"] = "0.0.0.0"
    assert studio_server._browser_address() == "localhost"  # a wildcard address is no address to browse to


@pytest.mark.parametrize("base", ["", "/studio/"])
def test_plotly_js_is_served_where_the_area_select_chart_loads_it(base, monkeypatch):
    """app_pages/area_select_chart.py draws with plotly.js from this route: the plotly
    package's own file, at the URL the chart asks for (under server.baseUrlPath too)."""
    from app_pages import area_select_chart

    monkeypatch.setattr(streamlit, "get_option", lambda name: base if name == "server.baseUrlPath" else None)
    url = area_select_chart.plotly_js_url()
    assert url == f"/{base.strip('/')}/{area_select_chart.PLOTLY_JS_ROUTE}".replace("//", "/")
    status, headers, body = _get([studio_server.plotly_js_route(base)], url)
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert "immutable" in headers["cache-control"]  # the path names the version (a new plotly: a new path)
    assert body.encode() == area_select_chart.PLOTLY_JS_FILE.read_bytes()
    assert f"plotly.js v{plotly.offline.get_plotlyjs_version()}" in body[:300]
    assert _get([studio_server.plotly_js_route(base)], "/_studio/plotly.min.js")[0] == 404
