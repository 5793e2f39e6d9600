"""Organising runs as a user does it in the dashboard: a name, tags and a note edited on the
Runs page and the Monitor (written to annotations.json and shown), the Runs table filtered
and its selected rows opened in Compare, and Compare's config diff."""

from __future__ import annotations

import json
import zlib
from urllib.parse import parse_qs

from fake_runs import make_run
from test_pages import folders, open_page, open_section, texts  # noqa: F401 (folders: a fixture)

from app_pages.navigation import COMPARE, MONITOR, RUNS
from resnet_core import runs
from resnet_core.dashboard import links


def _notes_key(page: str, run_dir) -> str:
    return f"{page}_notes_{run_dir.name}"


def _save(at, page: str, run_dir, name: str, tags: list[str], note: str):
    key = _notes_key(page, run_dir)
    at.text_input(key=f"{key}_name").input(name)
    at.multiselect(key=f"{key}_tags").set_value(tags)
    at.text_area(key=f"{key}_note").input(note)
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_tags_edited_on_the_runs_page_are_written_and_shown(folders):  # noqa: F811
    older = make_run(folders, "older", created=1_000.0)
    newer = make_run(folders, "newer")
    at = open_page(RUNS)
    at.selectbox(key="runs_pick").set_value(older.name).run()
    _save(at, "runs", older, "  baseline  ", ["lr-0.1", "new-tag"], "first try")
    saved = json.loads((older / runs.ANNOTATIONS_FILE).read_text())
    assert (saved["name"], saved["tags"], saved["note"]) == ("baseline", ["lr-0.1", "new-tag"], "first try")
    assert "Saved." in texts(at) and not (newer / runs.ANNOTATIONS_FILE).exists()
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[older.name, "name"] == "baseline" and list(table.loc[older.name, "tags"]) == ["lr-0.1", "new-tag"]
    assert table.loc[older.name, "note"] == "first try" and not list(table.loc[newer.name, "tags"])
    picker = at.selectbox(key="runs_pick")
    assert picker.format_func(older.name).startswith(f"baseline ({older.name}) · ResNet-20")  # pickers name it
    # A tag the format refuses: one line on the page, the saved annotations unchanged.
    _save(at, "runs", older, "baseline", ["has space"], "")
    assert any("Not saved: tag 'has space' may hold only" in e.value.replace("\\", "") for e in at.error)
    assert json.loads((older / runs.ANNOTATIONS_FILE).read_text())["tags"] == ["lr-0.1", "new-tag"]


def test_the_monitor_edits_the_same_annotations(folders):  # noqa: F811
    run_dir = make_run(folders, "watched")
    at = open_section(open_page(MONITOR, {"run": run_dir.name}), "mon_notes")
    _save(at, "mon", run_dir, "watched one", ["keep"], "a note")
    assert runs.read_run(run_dir).annotations.tags == ("keep",)
    page = texts(at).replace("\\", "")  # markdown-escaped
    assert f"#### watched one ({run_dir.name})" in page and ":gray-badge[keep] a note" in page  # the panel's header
    assert at.selectbox[0].format_func(run_dir.name).startswith(f"watched one ({run_dir.name})")


def test_filters_narrow_the_runs_table(folders):  # noqa: F811
    a = make_run(folders, "a", depth=20)
    b = make_run(folders, "b", depth=56, sweep="deep")
    c = make_run(folders, "c", depth=56, state="stopped")
    runs.write_annotations(a, "alpha", ["keep", "x"], "")
    runs.write_annotations(b, "", ["keep"], "the deep one")
    at = open_page(RUNS)
    assert set(at.dataframe[0].value["run"]) == {a.name, b.name, c.name}
    at.multiselect(key="runs_f_tags").set_value(["keep"]).run()
    assert set(at.dataframe[0].value["run"]) == {a.name, b.name}
    at.multiselect(key="runs_f_tags").set_value(["x"]).run()
    assert list(at.dataframe[0].value["run"]) == [a.name]
    at.multiselect(key="runs_f_tags").set_value([]).run()
    at.selectbox(key="runs_f_field").set_value("depth").run()
    assert at.multiselect(key="runs_f_values_depth").options == ["20", "56"]
    at.multiselect(key="runs_f_values_depth").set_value(["56"]).run()
    assert set(at.dataframe[0].value["run"]) == {b.name, c.name}
    at.multiselect(key="runs_f_states").set_value(["stopped"]).run()
    assert list(at.dataframe[0].value["run"]) == [c.name]
    at.text_input(key="runs_f_text").input("DEEP ONE").run()  # the note, case ignored: not c's
    assert not at.dataframe and "No run matches the filter." in texts(at)
    assert "0 of 3 runs" in texts(at)


def test_the_selected_rows_open_in_compare(folders):  # noqa: F811
    a, _, c = make_run(folders, "a"), make_run(folders, "b"), make_run(folders, "c")
    at = open_page(RUNS)
    link = next(p for p in at.get("page_link") if "Compare" in p.proto.label)
    assert "select rows" in link.proto.label and not link.proto.query_string  # nothing selected yet
    shown = list(at.dataframe[0].value["run"])  # newest first: c, b, a
    # Rows 0 and 2 selected, as a click on their boxes does (the table is keyed by the rows it shows).
    at.session_state[f"runs_table_{zlib.crc32(' '.join(shown).encode())}"] = {
        "selection": {"rows": [0, 2], "columns": [], "cells": []}}
    at.run()
    link = next(p for p in at.get("page_link") if "Compare" in p.proto.label)
    assert link.proto.label == "Compare the 2 selected runs" and link.proto.page == "compare"
    query = parse_qs(link.proto.query_string)
    assert links.split_ids(query["runs"][0]) == [shown[0], shown[2]] == [c.name, a.name]
    # What the link opens: Compare takes its runs from the query.
    compare = open_page(COMPARE, {"runs": query["runs"][0]})
    assert compare.multiselect(key="cmp_runs").value == [c.name, a.name]


def test_compare_shows_the_config_diff_of_the_chosen_runs(folders):  # noqa: F811
    a = make_run(folders, "a", depth=20)
    b = make_run(folders, "b", depth=56)
    runs.write_annotations(b, "deep", [], "")
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}"})
    label = next(e.proto.label for e in at.expander if "Config diff" in e.proto.label)
    assert label.startswith("Config diff: 2 of ") and label.endswith(" options differ")  # depth and name
    at = open_section(at, "cmp_config")
    table = next(t.value for t in at.dataframe if t.value.index.name == "field")
    assert list(table.index) == ["depth", "name"] and list(table.columns) == [a.name, f"deep ({b.name})"]
    assert table.loc["depth"].tolist() == ["20", "56"]
    at.toggle(key="cmp_config_all").set_value(True).run()
    table = next(t.value for t in at.dataframe if t.value.index.name == "field")
    assert {"depth", "name", "lr", "seed"} <= set(table.index) and table.loc["lr"].tolist() == ["0.1", "0.1"]
