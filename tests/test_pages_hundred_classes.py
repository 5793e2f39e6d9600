"""The views other than Analyze with a fabricated CIFAR-100 run (100 classes in 20
superclasses) through Streamlit's AppTest: the Runs table's dataset, the Monitor, Explain's
training views (forgetting, data map), held-out views (flips, top losses, calibration, label
errors) and its atlas, Compare's refusal of runs of other datasets (its views of two
100-class runs: test_pages_compare100.py), and Predict's top-5 of 100 classes."""

from __future__ import annotations

import json
import re

import numpy as np
from atlas_features import plant_features
from conftest import write_dynamics_record
from cifar100_format import COARSE_NAMES, FINE_NAMES, SUPERCLASS_OF
from fake_runs import make_run, write_checkpoint
from test_pages import PREDICT, _png_bytes, folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)
from test_pages_atlas import chart, map_key

from app_pages import explain_atlas, explain_training
from app_pages.navigation import COMPARE, EXPLAIN, MONITOR, RUNS
from resnet_core import runs
from resnet_core.dashboard import class_groups, label_errors
from resnet_core.formatting import md_escape

ORDER = class_groups.grouped_order(FINE_NAMES, SUPERCLASS_OF)


def card_classes(at) -> set[str]:
    """The true classes named on the page's gallery cards."""
    return set(re.findall(r"<div>true <b>([^<]+)</b></div>", "".join(html_blocks(at))))


def spec(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


def test_the_runs_table_names_the_dataset_and_the_monitor_shows_a_hundred_class_run(folders):  # noqa: F811
    ten = make_run(folders, "ten")
    hundred = make_run(folders, "hundred", dataset="cifar100", n_val=2000)
    table = open_page(RUNS).dataframe[0].value.set_index("run")
    assert table.loc[ten.name, "dataset"] == "cifar10" and table.loc[hundred.name, "dataset"] == "cifar100"
    at = open_page(MONITOR, {"run": hundred.name})
    assert not at.exception and hundred.name in texts(at)


def test_explain_views_of_a_hundred_class_run_name_its_classes(folders):  # noqa: F811
    run_dir = make_run(folders, "hundred", dataset="cifar100", n_val=2000, epochs_done=3, total_epochs=3)
    preds = runs.load_predictions(run_dir, "val", 3)
    for view in ("Held-out flips", "Top losses", "Calibration", "Label errors"):
        at = open_page(EXPLAIN, {"view": view})
        assert not at.exception, (view, [e.value for e in at.exception])
        if view == "Calibration":
            at.selectbox(key="ex_bin").set_value(int(np.argmax(np.bincount(
                np.clip(np.ceil(preds["topk_probs"][:, 0] * 15).astype(int) - 1, 0, 14))))).run()
            assert not at.exception
        shown = card_classes(at)
        assert shown and shown <= set(FINE_NAMES), (view, shown)  # CIFAR-100's names, on cards of 100 classes
    found = label_errors.find_label_errors(preds, 100)
    assert len(found.positions) and f"{len(found.positions):,} candidate" in texts(at)
    first = int(found.positions[0])
    assert label_errors.describe(found, first, list(FINE_NAMES)) in "".join(html_blocks(at))  # the suggested name


def test_the_training_views_of_a_hundred_class_run_name_its_classes(folders):  # noqa: F811
    run_dir = make_run(folders, "hundred", dataset="cifar100", n_val=300)
    rng = np.random.default_rng(2)
    right = rng.random((300, 6)) > 0.4
    prob = np.where(right, 0.6, 0.2).astype(np.float32)
    labels = rng.integers(0, 100, 300)
    original = labels.copy()
    original[:30] = (labels[:30] + 7) % 100  # planted noise: flipped from another of the 100 classes
    write_dynamics_record(run_dir, prob, right, labels=labels, original_labels=original, classes=FINE_NAMES)
    at = open_page(EXPLAIN, {"view": explain_training.DATA_MAP})
    assert not at.exception and at.get("bidi_component"), [e.value for e in at.exception]  # the map
    at = open_page(EXPLAIN, {"view": explain_training.FORGETTING})
    assert not at.exception, [e.value for e in at.exception]
    grid = "".join(html_blocks(at))
    names = set(re.findall(r"<div>label <b>([^<]+)</b></div>", grid))
    assert names and names <= set(FINE_NAMES), names
    flipped = set(re.findall(r"flipped from ([^<]+)</div>", grid))
    assert flipped and flipped <= set(FINE_NAMES), flipped


def test_the_atlas_of_a_hundred_class_run_has_twenty_superclasses_and_a_readable_matrix(folders):  # noqa: F811
    run_dir = make_run(folders, "hundred", dataset="cifar100", n_val=400)
    labels = np.random.default_rng(1).integers(0, 100, 400)
    f = plant_features(run_dir, labels, n=400, num_classes=100)
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert not at.exception, [e.value for e in at.exception]
    traces, _ = chart(at)
    assert [t["name"] for t in traces if t.get("showlegend") is not False] == list(COARSE_NAMES)
    grouped = [t for t in traces if t.get("showlegend") is False]
    assert {t["legendgroup"] for t in grouped} == set(COARSE_NAMES)
    assert {t["name"] for t in grouped} == {FINE_NAMES[c] for c in set(f.labels.tolist())}
    matrix = spec(at, "ex_atlas_cm")["data"][0]
    shown = [FINE_NAMES.index(name) for name in matrix["x"]]
    assert len(shown) == explain_atlas.MATRIX_CLASSES and shown == [c for c in ORDER if c in shown]
    assert "the 20 classes with the most of these images" in texts(at)
    # Each cell's shares count all the images of its classes, also those predicted as a class not shown.
    cells = spec(at, "ex_atlas_cm")["data"][1]
    counts = np.zeros((100, 100), dtype=np.int64)
    np.add.at(counts, (f.labels, f.predictions), 1)
    (t, p), hover = next(((t, p), h) for (t, p), h in zip(cells["customdata"], cells["hovertext"], strict=True)
                         if counts[t, p] and counts[t, p] < counts[t].sum())
    assert f"{100 * counts[t, p] / counts[t].sum():.1f}% of true {FINE_NAMES[t]}" in hover
    # A clicked cell (as the matrix's callback stores it: the classes, not the positions shown).
    t = int(f.labels[3])  # 1 in 4 planted features is predicted as the next class: image 3 is one
    p = (t + 1) % 100
    at.session_state[explain_atlas.CELL_KEY] = (map_key(run_dir), (t, p))
    at.run()
    assert not at.exception
    assert md_escape(f"true {FINE_NAMES[t]} → predicted {FINE_NAMES[p]}") in texts(at)
    assert chart(at)[0][-1]["name"] == f"true {FINE_NAMES[t]} → predicted {FINE_NAMES[p]}"


def test_compare_refuses_a_cifar10_run_beside_a_cifar100_run_in_one_line(folders):  # noqa: F811
    a = make_run(folders, "ten")
    b = make_run(folders, "hundred", dataset="cifar100")
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "a": a.name, "b": b.name,
                             "view": "Confusion difference"})
    assert [e.value for e in at.error] == [md_escape("A trained on CIFAR-10, B on CIFAR-100: their predictions "
                                                     "cannot be compared.")]
    assert not at.get("plotly_chart")


def test_predict_names_the_top_5_of_a_hundred_classes_whole(folders):  # noqa: F811
    run_dir = make_run(folders, "hundred", dataset="cifar100", depth=8)
    write_checkpoint(run_dir, "best.pt", epoch=2)
    at = open_page(PREDICT)
    at.file_uploader(key="pr_files").set_value([("red.png", _png_bytes((220, 20, 20)), "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    card = "".join(html_blocks(at))
    names = re.findall(r'text-overflow:ellipsis" title="([^"]+)">', card)
    assert len(names) == 5 and set(names) <= set(FINE_NAMES)  # each name whole in its hover
