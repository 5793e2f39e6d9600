"""The dashboard's URLs (resnet_core/dashboard/links.py): what a query value names, and the
links the pages build. tests/test_pages_urls.py: the pages using them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from resnet_core.dashboard import links

IDS = ["r1", "r2", "a&b #c?d e%", "x,y"]


def test_resolve_found_absent_not_found_left_out_and_invalid():
    assert links.resolve("r2", IDS) == links.Requested("r2")
    assert links.resolve(None, IDS) == links.Requested(None) == links.resolve("", IDS)
    assert links.resolve("gone", IDS).problem == "The link's run “gone” was not found."
    assert links.resolve("bad", IDS, unavailable={"bad": "cannot be read: no config"}).problem \
        == "The link's run “bad” cannot be read: no config."
    for value in ("../../etc/passwd", "..", ".", "a\0b", "r" * 256):
        found = links.resolve(value, IDS)
        assert found.value is None and "is not a valid run name" in found.problem, value
    # Not file names (an epoch, a view): only found or not found.
    assert links.resolve("a/b", ["1", "2"], "epoch", names=False).problem == "The link's epoch “a/b” was not found."


@pytest.mark.parametrize("value", ["r" * 20_000, "line\nbreak\x1b[31m"])
def test_a_rejected_value_is_quoted_short_and_printable(value):
    problem = links.resolve(value, IDS).problem
    assert len(problem) < 200 and problem.isprintable(), problem


def test_resolve_many_keeps_the_named_runs_once_in_order_and_says_which_are_left_out():
    text = links.join_ids(["r2", "gone", "x,y", "r2", "r1"])
    assert links.resolve_many(text, IDS) == (["r2", "x,y", "r1"], ["The link's run “gone” was not found."])
    assert links.resolve_many(" r2 ,,r1", IDS) == (["r2", "r1"], [])  # hand-written links
    assert links.resolve_many(None, IDS) == ([], []) == links.resolve_many("", IDS)


def test_join_ids_and_split_ids_round_trip_any_id():
    assert links.split_ids(links.join_ids(IDS)) == IDS
    assert links.join_ids(["run-1_a.b"]) == "run-1_a.b"  # plain ids stay readable in the URL


def test_page_url_encodes_every_value():
    url = urlsplit(links.page_url("monitor", run="a&b #c?d e%"))
    assert url.path == "./monitor" and not url.fragment
    assert parse_qs(url.query) == {"run": ["a&b #c?d e%"]}
    assert links.page_url("runs") == "./runs"
