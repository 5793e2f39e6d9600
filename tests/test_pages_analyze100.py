"""Analyze on a fabricated 100-class (CIFAR-100) run through Streamlit's AppTest: the view
picker, the superclass matrix's drill-down to a pair of superclasses, a class cell's gallery,
top-5 accuracy, the most-confused pairs and the sortable per-class table.

AppTest cannot click a Plotly chart: a click is set as the chart's callback sets it
(analyze_matrix.CELL_KEY for a class cell; PAIR_KEYS and VIEW_KEY for a superclass cell);
that a click's event maps back to those labels is tested in test_superclass_views.py."""

from __future__ import annotations

import json

import numpy as np
from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF
from fake_runs import make_run
from test_pages import choose_pair, folders, html_blocks, open_page, pair_of, texts  # noqa: F401 (a fixture)

from app_pages import analyze_matrix
from app_pages.navigation import ANALYZE
from resnet_core import formatting, runs
from resnet_core.metrics import class_report, coarse_confusion, confusion_matrix, topk_accuracy


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_analyze_shows_a_100_class_run_by_superclass_and_drills_down_to_a_cells_images(folders):  # noqa: F811
    run_dir = make_run(folders, "c100", dataset="cifar100", n_val=2000)
    at = open_page(ANALYZE, {"run": run_dir.name})
    preds = runs.load_predictions(run_dir, "val", 3)
    cm = confusion_matrix(preds["labels"], preds["preds"], 100)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "2,000"
    assert metrics["Accuracy"] == f"{100 * class_report(cm).accuracy:.2f}%"
    assert metrics["Top-5 accuracy"] == f"{100 * topk_accuracy(preds['labels'], preds['topk_classes'], 5):.2f}%"
    # The superclass matrix first, with the superclass accuracy.
    view = at.segmented_control(key=analyze_matrix.VIEW_KEY)
    assert view.value == "superclasses" and view.options == ["superclasses", "all 100 classes",
                                                             "one superclass pair"]
    coarse = coarse_confusion(cm, SUPERCLASS_OF, 20)
    assert f"superclass accuracy {100 * np.trace(coarse) / 2000:.2f}%" in texts(at)
    # The per-class table: numbers (sortable), with each class's superclass.
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "superclass", "precision", "recall", "F1", "support"]
    assert table["recall"].dtype.kind == "f" and table["support"].sum() == 2000
    row = table.set_index("class").loc["bus"]
    assert row["superclass"] == "vehicles_1"
    assert row["recall"] == 100 * cm[FINE_NAMES.index("bus")].tolist()[FINE_NAMES.index("bus")] / cm[
        FINE_NAMES.index("bus")].sum()
    # Precision, recall and F1 bars per superclass (of the superclass matrix), not per class.
    bars = next(f for f in _figures(at)
                if f["layout"].get("title", {}).get("text") == "Per-superclass precision, recall and F1")
    recall = next(t for t in bars["data"] if t["name"] == "recall")
    assert recall["x"] == list(COARSE_NAMES)
    assert recall["y"][3] == 100 * coarse[3, 3] / coarse[3].sum()
    # 15 most-confused pairs, each with its share of the true class.
    radio = at.radio(key="an_pairs")
    assert len(radio.options) == 15
    t, p = pair_of(at, 0)
    esc = formatting.md_escape
    assert radio.options[0] == (f"{esc(FINE_NAMES[t])} → {esc(FINE_NAMES[p])} · {cm[t, p]:,} "
                                f"({100 * cm[t, p] / cm[t].sum():.1f}% of {esc(FINE_NAMES[t])})")

    # A click on superclass cell (vehicles_1, vehicles_2): the pair's 5 x 5 classes.
    true_sc, pred_sc = COARSE_NAMES.index("vehicles_1"), COARSE_NAMES.index("vehicles_2")
    at.session_state[analyze_matrix.PAIR_KEYS[0]] = true_sc
    at.session_state[analyze_matrix.PAIR_KEYS[1]] = pred_sc
    at.session_state[analyze_matrix.VIEW_KEY] = "pair"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=analyze_matrix.PAIR_KEYS[0]).value == true_sc
    rows = [i for i in range(100) if SUPERCLASS_OF[i] == true_sc]
    cols = [i for i in range(100) if SUPERCLASS_OF[i] == pred_sc]
    block = int(cm[np.ix_(rows, cols)].sum())
    assert f"{block:,} of the {int(cm[rows].sum()):,} images of {esc('vehicles_1')} were predicted" in texts(at)
    # A click on one of its class cells opens that cell's images.
    t, p = max(((r, c) for r in rows for c in cols), key=lambda rc: cm[rc])
    assert cm[t, p] > 0
    at.session_state[analyze_matrix.CELL_KEY] = (t, p)
    at.run()
    assert not at.exception
    grid = html_blocks(at)[0]
    assert f'data-true="{t}" data-pred="{p}" data-total="{cm[t, p]}"' in grid
    assert grid.count('class="rs-card"') == min(int(cm[t, p]), 30)
    assert f"**true {esc(FINE_NAMES[t])} → predicted {esc(FINE_NAMES[p])}**" in texts(at)
    # A most-confused pair chosen meanwhile: the pair view follows it to its superclasses.
    t, p = choose_pair(at, 0)
    assert not at.exception and (SUPERCLASS_OF[t], SUPERCLASS_OF[p]) != (true_sc, pred_sc)
    assert (at.selectbox(key=analyze_matrix.PAIR_KEYS[0]).value,
            at.selectbox(key=analyze_matrix.PAIR_KEYS[1]).value) == (SUPERCLASS_OF[t], SUPERCLASS_OF[p])
    assert f'data-true="{t}" data-pred="{p}" data-total="{cm[t, p]}"' in html_blocks(at)[0]

    # Every class, grouped by superclass: a cell selected there (the pairs list's second) opens its images.
    at.segmented_control(key=analyze_matrix.VIEW_KEY).set_value("classes").run()
    assert not at.exception
    assert "grouped by superclass" in texts(at)
    t, p = choose_pair(at, 1)
    assert f'data-true="{t}" data-pred="{p}" data-total="{cm[t, p]}"' in html_blocks(at)[0]
    # The training split, by superclass too.
    at.segmented_control(key=analyze_matrix.VIEW_KEY).set_value("superclasses").run()
    at.segmented_control(key="an_split").set_value("train").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Top-5 accuracy"] == "—"


def test_a_10_class_run_has_no_view_picker_and_gets_top5_too(folders):  # noqa: F811
    run_dir = make_run(folders, "c10", n_val=300)
    at = open_page(ANALYZE, {"run": run_dir.name})
    assert not at.exception
    assert analyze_matrix.VIEW_KEY not in [el.key for el in at.get("segmented_control")]
    preds = runs.load_predictions(run_dir, "val", 3)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top-5 accuracy"] == f"{100 * topk_accuracy(preds['labels'], preds['topk_classes'], 5):.2f}%"
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "precision", "recall", "F1", "support"]
    assert table["precision"].dtype.kind == "f"
