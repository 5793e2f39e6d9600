"""app_pages/server.py: the page routes that serve index.html with the backend hint and the
early chunk imports, and the browser opened on start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.routing import Match
from streamlit import file_util

from app_pages import navigation, server

JS_DIR = Path(file_util.get_static_dir(), "static", "js")


def _get(routes, path: str) -> tuple[int, dict[str, str], str]:
    """Answer a GET of path from the first route that matches it, as the server would."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"run=x", "headers": [], "scheme": "http", "server": ("localhost", 80)}
    route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
    if route is None:
        return 404, {}, ""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(route.handle(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_every_page_but_the_default_answers_with_its_hinted_index():
    routes = server.page_routes("")
    pages = [p for p in navigation.PAGES if not p.default]
    assert len(routes) == len(pages) == len(navigation.PAGES) - 1
    for page in pages:
        status, headers, body = _get(routes, f"/{page.url_path}")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert headers["cache-control"] == "no-cache"  # a Streamlit upgrade must not meet a stale page
        assert body.count(server.BACKEND_HINT) == 1 and body.index(server.BACKEND_HINT) < body.index("</head>")
        assert "static/js/index." in body  # the rest is Streamlit's own page, which loads its bundle
        early = [f"./static/js/{f}" for f in server.chunk_files(JS_DIR, page.chunks)]
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
    plotly = server.chunk_files(JS_DIR, ("PlotlyChart",))
    assert len(plotly) == 1 and plotly[0].startswith("PlotlyChart.") and (JS_DIR / plotly[0]).stat().st_size > 1e6


def test_chunk_files_finds_each_named_chunk_and_skips_a_missing_one(tmp_path):
    for name in ("PlotlyChart.abc.js", "DataFrame.x-1.js", "PlotlyChartExtra.js", "Plotly.css"):
        (tmp_path / name).write_text("")
    assert server.chunk_files(tmp_path, ("PlotlyChart", "Nope", "DataFrame")) == ["PlotlyChart.abc.js",
                                                                                 "DataFrame.x-1.js"]


@pytest.mark.parametrize("index", [None, "<html><body>no head</body></html>", b"\xff\xfe<head>"])
def test_an_index_the_routes_cannot_amend_leaves_streamlits_pages_as_they_are(tmp_path, monkeypatch, caplog, index):
    """A Streamlit without an index.html, or with one that has no <head> or is not UTF-8:
    no routes (its own pages then load, 100 ms slower) and a warning, not a server that
    fails to start."""
    if index is not None:
        (tmp_path / "index.html").write_bytes(index.encode() if isinstance(index, str) else index)
    monkeypatch.setattr(server.file_util, "get_static_dir", lambda: str(tmp_path))
    with caplog.at_level("WARNING", logger=server.__name__):
        assert server.page_routes("") == []
    assert "serves Streamlit's pages unchanged" in caplog.text


def test_under_a_base_url_path_the_routes_move_with_it():
    routes = server.page_routes("/studio/")
    assert _get(routes, "/studio/monitor")[0] == 200
    assert _get(routes, "/monitor")[0] == 404


def test_the_hint_goes_first_into_head_once_and_a_page_without_head_is_refused():
    html = server.page_html("<html><HEAD><title>t</title></head><body><head></head></body></html>", ["A.1.js"])
    assert html.startswith("<html><head>" + server.BACKEND_HINT + "<title>")
    assert html.count(server.BACKEND_HINT) == 1
    assert '<script type="module">import("./static/js/A.1.js");</script></head><body>' in html
    with pytest.raises(ValueError, match="no <head>"):
        server.page_html("<html><body></body></html>")


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
    monkeypatch.setattr(server.config, "get_option", lambda key: options.get(key))
    monkeypatch.setattr(server.config, "is_manually_set", lambda key: False)
    monkeypatch.setattr(server.cli_util, "open_browser", opened.append)

    async def start():
        async with server.open_browser(None):
            pass

    asyncio.run(start())
    assert opened == ([] if headless else ["http://localhost:8123"])


def test_no_browser_for_a_unix_socket_address(monkeypatch):
    options = {"server.headless": False, "server.address": "unix:///tmp/studio.sock"}
    monkeypatch.setattr(server.config, "get_option", lambda key: options.get(key))
    monkeypatch.setattr(server.config, "is_manually_set", lambda key: key == "server.address")
    assert server._browser_address() is None
    options["server.address"] = "0.0.0.0"
    assert server._browser_address() == "localhost"  # a wildcard address is no address to browse to
