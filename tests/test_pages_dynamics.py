"""The training-dynamics views through Streamlit's AppTest, against runs made in temp folders
with a record of their training images (conftest.write_dynamics_record): Explain's
forgetting and data map (a run with planted label noise, one without noise, one without a
record, one with a damaged record) and Compare's overlap of two runs' sets.

AppTest cannot draw a box on a Plotly chart: the selection is set as the chart's callback
sets it (explain_training.AREAS_KEY); what an event's areas select is tested in
test_dynamics_views.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from conftest import write_dynamics_record
from fake_runs import make_run
from test_pages import folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages import explain_training
from app_pages.navigation import COMPARE, EXPLAIN
from resnet_core import formatting, runs
from resnet_core.cifar import load_cifar
from resnet_core.dashboard import data_map_selection, training_gallery
from resnet_core.dynamics import analyse, summary


def planted_record(run_dir: Path, cifar_dir: Path, n: int = 120, epochs: int = 8, noise: float = 0.0,
                   seed: int = 0, first: int = 0) -> None:
    """A record of the training images first..first+n-1 of cifar_dir: each image learned at
    an epoch of its own and sometimes forgotten; a fraction `noise` of them with a flipped
    label, which is never learned (as a network memorises last, if ever)."""
    rng = np.random.default_rng(seed)
    indices = np.arange(first, first + n)
    original = load_cifar("cifar10", cifar_dir).train_labels[indices].astype(np.int64)
    labels = original.copy()
    flipped = rng.choice(n, round(noise * n), replace=False)
    labels[flipped] = (labels[flipped] + 1 + rng.integers(0, 9, len(flipped))) % 10
    learned_at = rng.integers(0, epochs + 1, n)  # epochs past it right, save a random lapse
    right = (np.arange(epochs)[None, :] >= learned_at[:, None]) & (rng.random((n, epochs)) > 0.15)
    right[flipped] = False
    prob = np.where(right, 0.55 + 0.4 * rng.random((n, epochs)), 0.45 * rng.random((n, epochs)))
    write_dynamics_record(run_dir, prob, right, indices=indices, labels=labels, original_labels=original)


def test_the_training_views_say_how_many_images_no_epoch_presented(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "dropped", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(run_dir, cifar_dir, n=30, epochs=3)
    for epoch in (1, 2, 3):  # image 4 fell in the dropped last partial batch at every epoch
        path = runs.dynamics_path(run_dir, epoch)
        z = dict(np.load(path))
        z["label_prob"][4] = np.nan
        correct = np.unpackbits(z["correct"])
        correct[4] = 0
        z["correct"] = np.packbits(correct)
        np.savez(path, **z)
    s = summary(analyse(runs.load_dynamics(run_dir)))
    assert s["never_presented"] == 1
    counted = s["forgetting"]["forgotten_at_least_once"] + s["forgetting"]["unforgettable"] + \
        s["forgetting"]["never_learned"]
    assert counted == 29  # the 30th is in no count: the page must say so
    for view in explain_training.VIEWS:
        at = open_page(EXPLAIN, {"view": view})
        assert not at.exception, [e.value for e in at.exception]
        assert "30 training images over epochs 1–3. 1 of them no epoch presented (a dropped last" in texts(at)


def _cards(at) -> list[int]:
    return [int(i) for i in re.findall(r'class="rs-card" data-index="(\d+)"', html_blocks(at)[-1])]


def test_explain_shows_the_training_images_forgetting_with_planted_noise(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "noisy", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(run_dir, cifar_dir, noise=0.2)
    d = analyse(runs.load_dynamics(run_dir))
    s = summary(d)
    at = open_page(EXPLAIN)
    assert at.segmented_control(key="ex_view").value == explain_training.FORGETTING  # first, with a record
    assert at.segmented_control(key="ex_split").disabled  # the held-out split is not these views'
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Forgetting events"] == f"{s['forgetting']['events_total']:,}"
    assert metrics["Unforgettable"] == f"{s['forgetting']['unforgettable']:,}"
    assert metrics["Never learned"] == f"{s['forgetting']['never_learned']:,}"
    assert metrics["Labels flipped"] == "24"
    assert "augmented" in texts(at) and "BatchNorm in training mode" in texts(at)
    bars = {t.get("name"): t for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]}
    assert bars["label flipped (planted noise)"]["x"][-1] == "never learned (∞)"
    assert bars["label flipped (planted noise)"]["y"][-1] == 24  # every flipped image is never learned here
    most = d.record.indices[training_gallery.view_rows(d, "most forgotten")]
    assert _cards(at) == most[:30].tolist()
    grid = html_blocks(at)[-1]
    assert grid.count('class="rs-strip"') == min(30, len(most)) and "data:image/png;base64," in grid  # training set
    at.segmented_control(key="ex_train_gallery").set_value("never learned").run()
    never = training_gallery.view_rows(d, "never learned")
    assert _cards(at) == d.record.indices[never][:30].tolist()
    shown_flipped = int(d.record.flipped[never[:30]].sum())
    assert html_blocks(at)[-1].count('data-flipped="1"') == html_blocks(at)[-1].count("flipped from ") == shown_flipped
    assert f"24 of {len(never)} flipped" in texts(at)
    at.segmented_control(key="ex_train_gallery").set_value("unforgettable").run()
    assert _cards(at) == d.record.indices[training_gallery.view_rows(d, "unforgettable")][:30].tolist()


def test_the_data_map_draws_every_image_and_its_selection_opens_the_images(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "noisy", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(run_dir, cifar_dir, noise=0.2)
    d = analyse(runs.load_dynamics(run_dir))
    at = open_page(EXPLAIN, {"view": explain_training.DATA_MAP})
    (chart,) = at.get("bidi_component")  # app_pages/area_select_chart.py: the data it sends the browser
    drawn = json.loads(chart.proto.json)
    traces = json.loads(drawn["figure"])["data"]
    assert [t["type"] for t in traces] == ["scattergl", "scattergl"] and traces[1]["marker"]["symbol"] == "x"
    assert drawn["areas"] == [] and "Draw a box" in texts(at) and not html_blocks(at)
    m = d.data_map
    box = data_map_selection.Area("box", (0.0, float(m.variability_cut)), (0.0, float(m.confidence_cut)))
    at.session_state[explain_training.AREAS_KEY] = (run_dir.name, (box,))  # what a box drawn there sets
    at.run()
    chosen = data_map_selection.selected_images([box], m.variability, m.confidence, m.region,
                                                ("easy-to-learn", "ambiguous", "hard-to-learn"), d.record.flipped)
    assert len(chosen.positions) and chosen.flipped
    assert _cards(at) == d.record.indices[chosen.positions][:30].tolist()
    text = texts(at)
    assert f"{len(chosen.positions):,} images selected" in text and f"{chosen.flipped:,} flipped" in text
    assert f"hard-to-learn {chosen.region_counts['hard-to-learn']:,}" in text
    (chart,) = at.get("bidi_component")  # the kept box, for the chart to draw again
    assert json.loads(chart.proto.json)["areas"] == [{"kind": "box", "x": list(box.x), "y": list(box.y)}]
    at.button(key="ex_map_clear").click().run()
    (chart,) = at.get("bidi_component")
    assert json.loads(chart.proto.json)["areas"] == [] and "Draw a box" in texts(at) and not html_blocks(at)


def test_a_run_without_a_record_says_so_in_one_line(folders):  # noqa: F811
    make_run(folders, "older", epochs_done=3, total_epochs=3, n_val=100)
    at = open_page(EXPLAIN)
    assert at.segmented_control(key="ex_view").value == "Held-out flips"
    for view in explain_training.VIEWS:
        at = open_page(EXPLAIN, {"view": view})
        assert [i.value for i in at.info] == [explain_training.NO_RECORD]
        assert not at.get("plotly_chart") and not at.get("bidi_component")


def test_a_run_without_noise_and_one_with_a_damaged_record(folders, cifar_dir):  # noqa: F811
    clean = make_run(folders, "clean", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(clean, cifar_dir)
    at = open_page(EXPLAIN, {"run": clean.name, "view": explain_training.DATA_MAP})
    (chart,) = at.get("bidi_component")
    assert len(json.loads(json.loads(chart.proto.json)["figure"])["data"]) == 1  # no flipped trace
    at = open_page(EXPLAIN, {"run": clean.name})
    assert {m.label: m.value for m in at.metric}["Labels flipped"] == "none"
    assert "flipped from" not in html_blocks(at)[-1]
    runs.dynamics_path(clean, 2).write_bytes(b"not an npz")
    at = open_page(EXPLAIN, {"run": clean.name})
    assert len(at.error) == 1 and "cannot be read" in at.error[0].value


def test_compare_shows_the_overlap_of_two_runs_unforgettable_and_hard_sets(folders, cifar_dir):  # noqa: F811
    a = make_run(folders, "a", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    b = make_run(folders, "b", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    older = make_run(folders, "older", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(a, cifar_dir, seed=1)
    planted_record(b, cifar_dir, seed=2, first=20)  # images 20..139 against a's 0..119
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name},{older.name}", "view": "Training overlap",
                             "a": a.name, "b": b.name})
    assert not at.exception
    esc = formatting.md_escape
    assert esc("different image sets: A on 120, B on 120; the sets are compared on the 100 images") in texts(at)
    assert ("Without a record of their training images (older runs, or runs that ended before their first "
            f"epoch): {esc(older.name)}") in texts(at)
    table = at.dataframe[0].value
    da, db = (analyse(runs.load_dynamics(r)) for r in (a, b))
    shared_a = np.isin(da.record.indices, db.record.indices)
    shared_b = np.isin(db.record.indices, da.record.indices)
    row = table.set_index("set").loc["unforgettable"]
    assert row["A"] == da.forgetting.unforgettable[shared_a].sum()
    assert row["B"] == db.forgetting.unforgettable[shared_b].sum()
    both = np.intersect1d(da.record.indices[da.forgetting.unforgettable],
                          db.record.indices[db.forgetting.unforgettable])
    assert row["both"] == len(both) and 0 < row["jaccard"] <= 1
    assert "hard-to-learn" in set(table["set"])


def test_compare_refuses_the_overlap_of_runs_on_other_datasets(folders, cifar_dir):  # noqa: F811
    a = make_run(folders, "a", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    b = make_run(folders, "b100", epochs_done=3, total_epochs=3, n_val=100, dataset="cifar100")
    planted_record(a, cifar_dir, seed=1)
    planted_record(b, cifar_dir, seed=2)  # the same indices, but they would be CIFAR-100's images
    at = open_page(COMPARE, {"runs": f"{a.name},{b.name}", "view": "Training overlap", "a": a.name, "b": b.name})
    assert not at.exception and not at.dataframe
    assert [e.value for e in at.error] == [formatting.md_escape(
        f"A ({a.name}) trained on CIFAR-10, B ({b.name}) on CIFAR-100: their training images cannot be compared.")]
