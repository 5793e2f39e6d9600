"""The pages' tables and pickers as a user reads them: no raw None in a cell (an empty cell
stays blank, and its column's help says when it is empty), every chip of many chosen runs
in view, a picked sweep kept in its box."""

from __future__ import annotations

import json

import pytest
from fake_runs import make_run, make_unreadable_run
from test_pages import open_page
from test_pages import folders  # noqa: F401 (a fixture, for studio_runs)

from app_pages.navigation import ANALYZE, COMPARE, HOME, RUNS
from resnet_core import runs


@pytest.fixture
def studio_runs(folders):  # noqa: F811 (test_pages's fixture, imported above)
    """test_pages's temp runs and data folders (the app reads them from the environment)."""
    return folders


def _blank_when_empty(at) -> None:
    """Every table of the page shows a missing value as an empty cell, not "None"."""
    assert at.dataframe
    for table in at.dataframe:
        assert table.proto.HasField("placeholder") and table.proto.placeholder == "", table.proto.placeholder


def test_runs_compare_and_analyze_tables_leave_empty_cells_blank(studio_runs):
    lone = make_run(studio_runs, "lone")  # n = 1: no std; not the paper's recipe: no paper error
    other = make_run(studio_runs, "other", depth=56)
    make_unreadable_run(studio_runs, "config a list")  # a problem; the others have none
    runs_page = open_page(RUNS)
    table = runs_page.dataframe[0].value
    assert table["problem"].isna().sum() == 2  # missing values, drawn blank:
    _blank_when_empty(runs_page)

    compare = open_page(COMPARE, {"runs": f"{lone.name},{other.name}", "view": "Results"})
    results = compare.dataframe[0].value
    assert results["test_error_sample_std"].isna().all() and results["paper_test_error"].isna().all()
    _blank_when_empty(compare)
    compare.session_state["view"] = "Flips"
    compare.run()
    _blank_when_empty(compare)

    _blank_when_empty(open_page(ANALYZE, {"run": lone.name}))


def test_compare_shows_every_chosen_run_and_keeps_a_picked_sweep(studio_runs):
    made = [make_run(studio_runs, f"s{i}", sweep="many", epochs_done=1, total_epochs=1) for i in range(12)]
    at = open_page(COMPARE)
    at.selectbox(key="cmp_sweep").set_value("many").run()
    assert not at.exception, [e.value for e in at.exception]
    runs_box = at.multiselect(key="cmp_runs")
    assert sorted(runs_box.value) == sorted(r.name for r in made)
    assert runs_box.proto.wrap is True  # the chips wrap onto more rows: 10 of 12 in view, not 2
    assert "12 runs chosen" in [c.value for c in at.caption]  # and the count says how many there are
    assert at.selectbox(key="cmp_sweep").value == "many"  # the pick stays in its box
    # Changing the runs by hand: the sweep no longer describes them.
    runs_box.set_value([made[0].name]).run()
    assert at.selectbox(key="cmp_sweep").value is None


def test_home_cards_leave_out_settings_a_run_does_not_record(studio_runs):
    run = make_run(studio_runs, "old")
    config = json.loads((run / runs.CONFIG_FILE).read_text())
    for field in ("block", "shortcut"):
        config["config"].pop(field)
    (run / runs.CONFIG_FILE).write_text(json.dumps(config))
    at = open_page(HOME)
    card = next(m.value for m in at.markdown if run.name in m.value)
    assert "None" not in card and "shortcut" not in card, card
