"""What a page does with its URL: a query value that names nothing the page can show is
reported and never replaced by another run shown as if it were the one asked for; the
links the pages build encode their values (tests/test_links.py: the pure functions)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import pytest
from fake_runs import make_run, make_unreadable_run
from test_pages import open_page, texts
from test_pages import folders  # noqa: F401 (a fixture, for studio_runs)

from app_pages.navigation import ANALYZE, COMPARE, EXPLAIN, MONITOR, PREDICT, RUNS
from resnet_core import formatting, runs
from resnet_core.dashboard import links


@pytest.fixture
def studio_runs(folders):  # noqa: F811 (test_pages's fixture, imported above)
    """test_pages's temp runs and data folders (the app reads them from the environment)."""
    return folders


BAD_RUNS = {"missing": "does-not-exist", "a path": "../../etc/passwd", "20,000 characters": "r" * 20_000}


def _param(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def _errors(at) -> str:
    return "\n".join(e.value for e in at.error)


@pytest.mark.parametrize("page", [MONITOR, ANALYZE, EXPLAIN, PREDICT])
@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_a_run_in_the_url_that_is_not_there_is_reported_never_replaced(studio_runs, page, case):
    good = make_run(studio_runs, "good")
    bad = BAD_RUNS[case]
    at = open_page(page, {"run": bad})
    errors = _errors(at)
    assert ("was not found" in errors) if case == "missing" else ("is not a valid run name" in errors), errors
    assert len(errors) < 400  # the value is quoted cut short, not 20,000 characters back
    picker = at.selectbox[0]
    assert picker.value is None and any(good.name in o for o in picker.options)  # offered, none picked
    assert _param(at, "run") == bad  # the URL still says what was asked for
    assert f"#### {good.name}" not in texts(at)
    # Picking from the list opens that run and puts it in the URL.
    picker.set_value(good.name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _param(at, "run") == good.name
    assert not at.error or page == PREDICT  # Predict then loads the fake run's model, which it cannot


def test_a_run_a_page_cannot_show_says_why(studio_runs):
    make_run(studio_runs, "good")
    broken = make_unreadable_run(studio_runs, "config a list")
    bare = make_run(studio_runs, "bare", with_checkpoint=False, epochs_done=0, state="stopped")
    for page, run, why in ((ANALYZE, broken.name, "config.json holds a list"),
                           (EXPLAIN, bare.name, "has no recorded epoch"),
                           (PREDICT, bare.name, "has no checkpoint")):
        at = open_page(page, {"run": run})
        assert f"“{run}”" in _errors(at) and why in _errors(at), (page, _errors(at))
        assert at.selectbox[0].value is None


def test_monitor_shows_an_unreadable_run_it_was_asked_for_and_one_that_did_not_start(studio_runs):
    make_run(studio_runs, "good")
    broken = make_unreadable_run(studio_runs, "config a list")
    at = open_page(MONITOR, {"run": broken.name})
    assert at.selectbox[0].value == broken.name and "cannot be read" in _errors(at)
    unstarted = studio_runs / "20260101-000000-unstarted"
    unstarted.mkdir()
    os.utime(unstarted, (0, 0))  # older than a trainer still starting: a run that failed to start
    at = open_page(MONITOR, {"run": unstarted.name})
    assert at.selectbox[0].value == unstarted.name and "exited before it started the run" in _errors(at)


def test_monitor_shows_a_trainer_still_decoding_after_a_reload_with_its_progress(studio_runs):
    """A run launched before a reload (or from another tab: this session has no launch of
    it) whose trainer is still decoding its image folder: offered and opened as starting,
    with the trainer's last progress line as a bar, and refreshed until it has a record."""
    make_run(studio_runs, "good")
    folder = studio_runs / "20991231-000000-decoding"
    folder.mkdir()
    step = runs.StartingProgress("decoding the images of /photos", 18_000, 60_000, "images")
    (folder / runs.CONSOLE_FILE).write_text(step.line + "\n")
    for query in ({"run": folder.name}, None):
        at = open_page(MONITOR, query)
        assert at.selectbox[0].value == folder.name and folder.name in at.selectbox[0].options[0]
        assert not at.error and any("Starting the trainer" in i.value for i in at.info)
        (bar,) = at.get("progress")
        assert bar.proto.value == 30 and bar.proto.text == formatting.md_escape(
            "decoding the images of /photos: 18,000 of 60,000 images")


def test_compare_says_which_runs_and_choices_of_its_url_it_left_out(studio_runs):
    a = make_run(studio_runs, "a")
    b = make_run(studio_runs, "b")
    at = open_page(COMPARE, {"runs": f"{a.name},gone,{b.name}", "a": "elsewhere", "epoch": "99",
                             "view": "Confusion difference"})
    assert at.multiselect(key="cmp_runs").value == [a.name, b.name]
    warnings = "\n".join(w.value for w in at.warning)
    assert "“gone” was not found" in warnings, warnings
    assert "“elsewhere” was not found" in warnings and "“99”" in warnings, warnings
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "view": "Bogus"})
    assert any("view “Bogus” was not found" in w.value and "“Curves” instead" in w.value for w in at.warning)


def test_compare_never_stands_a_run_in_for_a_missing_one_against_itself(studio_runs):
    """A link's run A that is gone is replaced by another chosen run, never by its run B:
    a run compared with itself shows no differences, as if there were none."""
    a = make_run(studio_runs, "a")
    b = make_run(studio_runs, "b")
    for query in ({"a": "gone", "b": a.name}, {"a": b.name, "b": "gone"}):
        at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "view": "Confusion difference", **query})
        picked = at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value
        assert sorted(picked) == sorted([a.name, b.name]), (query, picked)


def test_explain_says_an_epoch_in_the_url_is_not_recorded(studio_runs):
    run = make_run(studio_runs, "good", epochs_done=3)
    at = open_page(EXPLAIN, {"run": run.name, "epoch": "99"})
    assert "epoch “99” was not found" in "\n".join(w.value for w in at.warning)


def test_runs_table_links_encode_the_run_id(studio_runs):
    made = make_run(studio_runs, "plain")
    odd = made.rename(studio_runs / "a&b #c?d e%")
    at = open_page(RUNS)
    table = at.dataframe[0].value
    row = table[table["run"] == odd.name].iloc[0]
    for column, path in (("monitor", "/monitor"), ("analyze", "/analyze")):
        url = urlsplit(row[column])
        assert url.path.endswith(path) and not url.fragment
        assert parse_qs(url.query) == {"run": [odd.name]}
    assert links.page_url("monitor", run=odd.name) == row["monitor"]
