"""Compare and Home with two fabricated CIFAR-100 runs (100 classes in 20 superclasses) through
Streamlit's AppTest: the difference matrix drawn as Analyze draws its 100-class matrix
(superclass ticks and lines, no numbers in the cells, only cells with images clickable, hovers
that name each class's superclass) and a click that maps back to its classes; the Flips tab's
table that scrolls and its bars per superclass; the run cards that name the dataset.

AppTest cannot click a Plotly chart: a click's event is built from the drawn figure's point
(as the browser would send it) and read as the page's on_select reads it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import streamlit as st
from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF
from fake_runs import make_run, repredict
from test_pages import folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages.navigation import COMPARE, HOME
from resnet_core import runs
from resnet_core.dashboard import class_groups, comparison
from resnet_core.dashboard.cell_selection import Cell, selection_from_event
from resnet_core.formatting import md_escape

ORDER = class_groups.superclass_order(FINE_NAMES, SUPERCLASS_OF)


def spec(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


@pytest.fixture
def two_runs(folders):  # noqa: F811
    """Two 100-class runs of the same 2,000 images with other mistakes, and their test predictions."""
    a = make_run(folders, "a", dataset="cifar100", n_val=2000)
    b = make_run(folders, "b", dataset="cifar100", n_val=2000, shortcut="none")
    pa, pb = runs.load_predictions(a, "test", 3), repredict(b, "test", 3, accuracy=0.5, seed=5)
    return a, b, comparison.pair(pa, pb)


def open_compare(a, b, view: str):
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "a": a.name, "b": b.name, "view": view})
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_difference_of_two_hundred_class_runs_reads_as_analyzes_matrix(two_runs):
    a, b, paired = two_runs
    diff = comparison.difference(paired, 100)
    at = open_compare(a, b, "Confusion difference")
    fig = spec(at, "cmp_cm")
    heat, cells = fig["data"]
    # Superclass by superclass: drawn cell (i, j) is the classes' cell (ORDER[i], ORDER[j]).
    assert heat["x"] == [FINE_NAMES[c] for c in ORDER] and heat["y"] == heat["x"]
    assert np.array_equal(np.array(heat["z"]), diff.diff[np.ix_(ORDER, ORDER)])
    assert "texttemplate" not in heat and "text" not in heat  # 10,000 numbers too small to read: in the hover
    # One tick per superclass, lines between the 20 blocks.
    assert fig["layout"]["xaxis"]["ticktext"] == list(COARSE_NAMES) == fig["layout"]["yaxis"]["ticktext"]
    lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert len(lines) == 2 * 19
    # Only the cells either run has images in take a click; each hover names the superclasses.
    busy = {(int(t), int(p)) for t, p in np.argwhere(diff.a + diff.b)}
    assert {tuple(c) for c in cells["customdata"]} == busy and len(busy) < 100 * 100
    t, p = cells["customdata"][0]
    assert (f"true <b>{FINE_NAMES[t]}</b> ({COARSE_NAMES[SUPERCLASS_OF[t]]}) → predicted <b>{FINE_NAMES[p]}</b> "
            f"({COARSE_NAMES[SUPERCLASS_OF[p]]})") in cells["hovertext"][0]
    assert "superclass by superclass" in texts(at)
    print(f"\n100-class difference figure: {len(json.dumps(fig)) / 1e6:.2f} MB of JSON, {len(busy):,} clickable cells")


def test_a_click_on_the_reordered_difference_opens_the_images_of_its_classes(two_runs):
    a, b, paired = two_runs
    diff = comparison.difference(paired, 100)
    at = open_compare(a, b, "Confusion difference")
    _, cells = spec(at, "cmp_cm")["data"]
    # A changed cell whose drawn position is not its labels' (the order moved it).
    row, col = next((i, j) for i, j in np.argwhere(diff.diff[np.ix_(ORDER, ORDER)] != 0)
                    if (ORDER[i], ORDER[j]) != (i, j))
    t, p = ORDER[row], ORDER[col]
    k = [tuple(c) for c in cells["customdata"]].index((t, p))
    assert (cells["y"][k], cells["x"][k]) == (FINE_NAMES[t], FINE_NAMES[p])  # drawn in row t's, column p's place
    event = {"selection": {"points": [{"x": cells["x"][k], "y": cells["y"][k], "customdata": cells["customdata"][k]}]}}
    cell = selection_from_event(event, FINE_NAMES)  # as the page's on_select reads the click
    assert cell == Cell(t, p)
    at.session_state["cmp_cell"] = (cell.true, cell.pred)
    at.run()
    assert not at.exception
    assert md_escape(f"true {FINE_NAMES[t]} → predicted {FINE_NAMES[p]}") in texts(at)
    entered, left = comparison.cell_changes(paired, cell)
    blocks = html_blocks(at)
    assert len(entered) + len(left) == abs(diff.diff[t, p]) or len(entered) and len(left)
    assert any(f'data-kind="entered" data-total="{len(entered)}"' in h for h in blocks) or not len(entered)
    assert any(f'data-kind="left" data-total="{len(left)}"' in h for h in blocks) or not len(left)
    outline = next(s for s in spec(at, "cmp_cm")["layout"]["shapes"] if s["type"] == "rect")
    assert (outline["x0"], outline["y0"]) == (col - 0.5, row - 0.5)  # around the cell where it is drawn


def test_the_flips_of_two_hundred_class_runs_scroll_in_a_table_and_sum_per_superclass(two_runs, monkeypatch):
    a, b, paired = two_runs
    heights = []  # AppTest's dataframe keeps no height: the page's call is recorded instead
    dataframe = st.dataframe
    monkeypatch.setattr(st, "dataframe", lambda data, **kw: heights.append(kw.get("height")) or dataframe(data, **kw))
    at = open_compare(a, b, "Flips")
    a_counts, b_counts = comparison.flip_counts(paired, 100)
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "superclass", "A right, B wrong", "B right, A wrong", "net for B"]
    assert len(table) == 101 and table["class"].iloc[-1] == "all"
    row = table.set_index("class").loc["bus"]
    assert row["superclass"] == "vehicles_1" and row["A right, B wrong"] == a_counts[FINE_NAMES.index("bus")]
    assert heights == [35 * 12 + 3]  # as tall as 10 classes' table (not 3,573 px): its 101 rows scroll in it
    bars = spec(at, "cmp_flip_bars")
    assert [t["y"] for t in bars["data"]] == [list(COARSE_NAMES)] * 2  # a row per superclass, names on the left
    assert bars["data"][0]["x"][18] == sum(a_counts[c] for c in class_groups.members(FINE_NAMES, SUPERCLASS_OF, 18))
    assert sum(bars["data"][1]["x"]) == int(b_counts.sum()) == len(comparison.flips(paired)[1])
    assert bars["layout"]["yaxis"]["title"]["text"] == "true superclass"


def test_run_cards_and_pickers_name_a_hundred_class_runs_dataset(folders):  # noqa: F811
    ten = make_run(folders, "ten")
    hundred = make_run(folders, "hundred", dataset="cifar100")
    cards = [m.value for m in open_page(HOME).markdown if m.value.startswith("**")]
    card = {c.split("**")[1]: c for c in cards}
    assert "CIFAR-100" in card[md_escape(hundred.name)]
    assert "CIFAR-10" not in card[md_escape(ten.name)]  # CIFAR-10, the default, as before: unnamed
    at = open_compare(ten, hundred, "Curves")  # the pickers too
    title = at.multiselect(key="cmp_runs").format_func
    assert title(hundred.name) == f"{hundred.name} · ResNet-20 · CIFAR-100 · completed"
    assert title(ten.name) == f"{ten.name} · ResNet-20 · completed"
    curves = [t["name"] for t in spec(at, "cmp_curves")["data"]]
    assert any(name.startswith(f"ResNet-20 · CIFAR-100 · {hundred.name}") for name in curves)
    assert any(name.startswith(f"ResNet-20 · {ten.name}") for name in curves)
