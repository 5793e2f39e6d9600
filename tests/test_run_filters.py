"""The Runs table's filters and Compare's config diff, as pure functions of the runs listed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fake_runs import make_run

from resnet_core import runs
from resnet_core.dashboard import config_diff, run_filters, runs_table
from resnet_core.dashboard.run_filters import NOT_RECORDED, RunFilter, filter_runs


@pytest.fixture
def listed(tmp_path):
    """Four runs: two sweeps' worth of settings, tags, notes, states and an unreadable folder."""
    a = make_run(tmp_path, "a", depth=20, created=4.0)
    b = make_run(tmp_path, "b", depth=56, sweep="deep", created=3.0)
    c = make_run(tmp_path, "c", depth=56, shortcut="none", state="stopped", created=2.0)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / runs.CONFIG_FILE).write_text("[1]")
    (bad / runs.STATUS_FILE).write_text("{}")
    runs.write_annotations(a, "Alpha", ["keep", "lr:0.1"], "")
    runs.write_annotations(b, "", ["keep"], "The deep one")
    return {r.run_id: r for r in runs.list_runs(tmp_path)}, (a.name, b.name, c.name, "bad")


def _ids(infos, **parts) -> list[str]:
    return [r.run_id for r in filter_runs(infos.values(), RunFilter(**parts))]


def test_each_part_of_the_filter_narrows_and_empty_parts_keep_all(listed):
    infos, (a, b, c, bad) = listed
    assert _ids(infos) == [a, b, c, bad] and not RunFilter().active
    assert _ids(infos, text="alpha") == [a]  # the name, case ignored
    assert _ids(infos, text=" DEEP ONE ") == [b]  # the note
    assert _ids(infos, text=c[-6:]) == [c]  # the id
    assert _ids(infos, tags=("keep",)) == [a, b] and _ids(infos, tags=("lr:0.1", "nope")) == [a]  # any of them
    assert _ids(infos, states=("stopped", "unreadable")) == [c, bad]
    assert _ids(infos, sweeps=("deep",)) == [b] and _ids(infos, sweeps=(run_filters.NO_SWEEP,)) == [a, c, bad]
    assert _ids(infos, models=("plain-56",)) == [c] and _ids(infos, models=("?",)) == [bad]
    assert _ids(infos, field="depth", values=("56",)) == [b, c]
    assert _ids(infos, field="depth", values=(NOT_RECORDED,)) == [bad]
    assert _ids(infos, field="depth") == [a, b, c, bad]  # a field without values keeps every run
    assert _ids(infos, tags=("keep",), field="depth", values=("56",)) == [b]  # the parts together
    assert RunFilter(tags=("x",)).active and not RunFilter(field="depth").active


def test_the_pickers_offer_what_the_runs_hold_numbers_by_value(listed, tmp_path):
    infos, _ = listed
    shown = list(infos.values())
    assert run_filters.tag_options(shown) == ["keep", "lr:0.1"]
    assert run_filters.state_options(shown) == ["completed", "stopped", "unreadable"]
    assert run_filters.sweep_options(shown) == ["", "deep"]
    assert run_filters.model_options(shown) == ["?", "plain-56", "ResNet-20", "ResNet-56"]
    assert {"depth", "lr", "seed", "sweep"} <= set(run_filters.config_fields(shown))
    assert run_filters.field_options(shown, "depth") == ["20", "56", NOT_RECORDED]
    odd = make_run(tmp_path / "more", "odd")
    record = json.loads((odd / runs.CONFIG_FILE).read_text())
    record["config"].update(lr=1e-05, milestones=[2.5, 5.0], channels_last=True)
    (odd / runs.CONFIG_FILE).write_text(json.dumps(record))
    both = [*shown, runs.read_run(odd)]
    assert run_filters.field_options(both, "lr") == ["1e-05", "0.1", NOT_RECORDED]  # by value, not as text
    assert run_filters.config_value(both[-1], "milestones") == "[2.5, 5.0]"
    assert run_filters.config_value(both[-1], "channels_last") == "true"


def test_the_runs_table_shows_names_tags_notes_and_sorts_time_as_a_number(listed):
    infos, (a, b, c, bad) = listed
    table = runs_table.runs_table(list(infos.values())).set_index("run")
    assert table.loc[a, "name"] == "Alpha" and list(table.loc[a, "tags"]) == ["keep", "lr:0.1"]
    assert table.loc[b, "note"] == "The deep one" and pd.isna(table.loc[c, "name"])
    assert pd.api.types.is_numeric_dtype(table["time"]) and table.loc[a, "time"] > 0


def test_the_config_diff_lists_the_fields_that_differ_and_marks_cells_against_the_first_run(listed):
    infos, (a, b, c, _) = listed
    diff = config_diff.config_diff([infos[a], infos[b], infos[c]])
    assert diff.differing == ["depth", "name", "shortcut", "sweep"]
    table, differs = diff.shown()
    assert list(table.columns) == [f"Alpha ({a})", b, c]  # each run by its title
    assert table.loc["depth"].tolist() == ["20", "56", "56"]
    assert differs.loc["depth"].tolist() == [False, True, True]
    assert differs.loc["shortcut"].tolist() == [False, False, True]
    everything, marks = diff.shown(identical_too=True)
    assert len(everything) > len(table) and not marks.loc["lr"].any() and everything.loc["lr"].tolist() == ["0.1"] * 3
    css = config_diff.highlight(differs)
    assert css.loc["shortcut"].tolist()[:2] == ["", ""] and css.loc["shortcut"].iloc[2].startswith("background")


def test_a_config_diff_of_identical_runs_or_unreadable_ones_differs_in_nothing(listed, tmp_path):
    infos, (a, _, _, bad) = listed
    assert config_diff.config_diff([infos[a]]).differing == []
    twin = make_run(tmp_path / "twin", "a", depth=20)
    record = json.loads((twin / runs.CONFIG_FILE).read_text())
    record["config"]["runs_dir"] = infos[a].train_config["runs_dir"]
    (twin / runs.CONFIG_FILE).write_text(json.dumps(record))
    assert config_diff.config_diff([infos[a], runs.read_run(twin)]).differing == []
    with_bad = config_diff.config_diff([infos[a], infos[bad]])
    assert "depth" in with_bad.differing and with_bad.table.loc["depth", bad] == NOT_RECORDED
    empty = config_diff.config_diff([infos[bad]])
    assert empty.table.empty and empty.differing == []


def test_the_runs_table_sorts_epochs_as_numbers(tmp_path):
    from fake_runs import make_run

    from resnet_core import runs
    from resnet_core.dashboard import runs_table

    made = [make_run(tmp_path, name, epochs_done=done, total_epochs=total)
            for name, done, total in (("a", 10, 12), ("b", 9, 9), ("c", 2, 30))]
    table = runs_table.runs_table([runs.read_run(p) for p in made])
    assert "epochs" not in table.columns and table["epochs done"].dtype.kind == "i"
    assert table.sort_values("epochs done")["run"].str[-1].tolist() == ["c", "b", "a"]  # as text: "10" < "2" < "9"
    assert table["of epochs"].tolist() == [12, 9, 30]
