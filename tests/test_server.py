"""app_pages/server.py: the page routes that serve index.html with the backend hint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.routing import Match
from streamlit import file_util

from app_pages import navigation, server


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


def test_every_page_but_the_root_answers_with_the_hinted_index():
    routes = server.page_routes("")
    for page in navigation.PAGES:
        status, headers, body = _get(routes, f"/{page.url_path}")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert headers["cache-control"] == "no-cache"  # a Streamlit upgrade must not meet a stale page
        assert body.count(server.BACKEND_HINT) == 1 and body.index(server.BACKEND_HINT) < body.index("</head>")
        # the rest is Streamlit's own page, which loads its bundle
        assert "static/js/index." in body
    # Streamlit's own routes keep the rest: the root, its files, anything unknown.
    for path in ("/", "/favicon.png", "/manifest.json", "/_stcore/health", "/nope", "/train/_stcore/health"):
        assert _get(routes, path)[0] == 404, path


def test_under_a_base_url_path_the_routes_move_with_it():
    routes = server.page_routes("/studio/")
    assert _get(routes, "/studio/monitor")[0] == 200
    assert _get(routes, "/monitor")[0] == 404


def test_the_hint_goes_first_into_head_once_and_a_page_without_head_is_refused():
    html = server.page_html("<html><HEAD><title>t</title></HEAD><body><head></head></body></html>")
    assert html.startswith("<html><head>" + server.BACKEND_HINT + "<title>")
    assert html.count(server.BACKEND_HINT) == 1
    with pytest.raises(ValueError, match="no <head>"):
        server.page_html("<html><body></body></html>")


def test_streamlits_frontend_still_reads_the_setting_the_hint_gives():
    """The hint is only worth its route while the installed frontend reads
    window.__streamlit.BACKEND_BASE_URL; a Streamlit that stops reading it loads pages as
    before (100 ms slower), and this test says so."""
    bundle = "".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in Path(file_util.get_static_dir(), "static", "js").glob("index.*.js"))
    assert "window.__streamlit" in bundle and "BACKEND_BASE_URL" in bundle
