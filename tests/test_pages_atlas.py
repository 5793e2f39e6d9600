"""Explain's view "Atlas (features)" through Streamlit's AppTest, against a run made in a temp
folder and features planted for it: the map, a drawn area's gallery with its counts per
class and cell, a clicked cell outlined on the map, the features computed in the
background when there are none, and a gallery image's similar training images beside the
k-NN accuracy of the features.

AppTest cannot draw on the chart: the areas are set as its callback sets them
(explain_atlas.AREAS_KEY), a clicked cell as the matrix's callback does (CELL_KEY)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from atlas_features import plant_features
from fake_runs import make_run, write_checkpoint
from test_pages import folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)
from test_pages_dynamics import planted_record

from app_pages import caches, explain_atlas
from app_pages.navigation import EXPLAIN
from resnet_core import embeddings, projections, runs
from resnet_core.cifar import load_cifar
from resnet_core.dashboard import atlas_selection
from resnet_core.dashboard.cell_selection import Cell
from resnet_core.dashboard.data_map_selection import Area
from resnet_core.dynamics import analyse
from resnet_core.formatting import md_escape
from resnet_core.neighbours import split_knn_accuracy


@pytest.fixture
def planted(cifar_dir):
    """plant(run_dir, split="val", n=120) caches planted features of a run's split (atlas_features.py)."""
    labels = load_cifar("cifar10", cifar_dir).train_labels

    def plant(run_dir: Path, split: str = "val", n: int = 120) -> embeddings.Features:
        return plant_features(run_dir, labels, split, n)
    return plant


def chart(at) -> tuple[list[dict], list]:
    (component,) = at.get("bidi_component")  # app_pages/area_select_chart.py: what it sends the browser
    drawn = json.loads(component.proto.json)
    return json.loads(drawn["figure"])["data"], drawn["areas"]


def images(trace: dict) -> np.ndarray:
    """The dataset indices of a trace's points (customdata [index, confidence], sent as binary)."""
    custom = trace["customdata"]
    return np.frombuffer(base64.b64decode(custom["bdata"]), dtype=custom["dtype"]).reshape(-1, 2)[:, 0].astype(int)



def map_key(run_dir: Path) -> tuple:
    """What the view keeps a drawn area or a clicked cell under: the map of these features."""
    f = embeddings.cached_features(run_dir, "val", "best")
    return run_dir.name, "val", "best", projections.PCA, projections.features_digest(f.features)

def cards(at) -> list[int]:
    return [int(i) for i in re.findall(r'class="rs-card" data-index="(\d+)"', html_blocks(at)[-1])]


def test_the_atlas_maps_every_image_and_an_area_opens_its_images(folders, cifar_dir, planted):  # noqa: F811
    run_dir = make_run(folders, "atlas", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    f = planted(run_dir)
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert at.segmented_control(key="ex_split").disabled  # the held-out split is not this view's
    traces, areas = chart(at)
    assert all(t["type"] == "scattergl" for t in traces) and areas == []
    assert "Draw a box" in texts(at) and "120 images in all" in texts(at)
    coords = projections.pca(f.features)
    box = Area("box", (0.0, float(coords[:, 0].max()) + 1), (-100.0, 100.0))  # the right-hand cluster
    at.session_state[explain_atlas.AREAS_KEY] = (map_key(run_dir), (box,))
    at.run()
    chosen = atlas_selection.select([box], coords, f.labels, f.predictions, f.confidence, 10)
    assert 0 < len(chosen.rows) < 120 and (f.labels[chosen.rows] % 2 == f.labels[chosen.rows[0]] % 2).all()
    assert cards(at) == f.indices[chosen.rows][:30].tolist()
    grid = html_blocks(at)[-1]
    assert "data:image/png;base64," in grid and "loss" not in grid  # the features have no loss
    assert grid.count('title="top-3 predictions"></div>') == 30  # nor a top-k beyond the prediction
    text = texts(at)
    assert f"{len(chosen.rows):,} images in the area" in text
    classes = runs.read_run(run_dir).classes
    assert f"By true class: {atlas_selection.counts_text(chosen.by_true(), classes)}" in text
    assert f"By predicted class: {atlas_selection.counts_text(chosen.by_predicted(), classes)}" in text
    matrix = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["z"]
    assert np.array_equal(np.array(matrix, dtype=float), chosen.counts)  # the area's images per cell
    assert chart(at)[1] == [{"kind": "box", "x": list(box.x), "y": list(box.y)}]  # kept, drawn again
    t = int(f.labels[chosen.rows[0]])
    at.session_state[explain_atlas.CELL_KEY] = (map_key(run_dir), (t, (t + 1) % 10))
    at.run()
    in_cell = atlas_selection.select([box], coords, f.labels, f.predictions, f.confidence, 10, Cell(t, (t + 1) % 10))
    assert cards(at) == f.indices[in_cell.rows][:30].tolist() and len(in_cell.rows)
    outlined = chart(at)[0][-1]
    assert outlined["name"] == f"true {classes[t]} → predicted {classes[(t + 1) % 10]}"
    assert images(outlined).tolist() == np.flatnonzero((f.labels == t) & (f.predictions == (t + 1) % 10)).tolist()
    at.button(key="ex_atlas_clear").click().run()
    assert chart(at)[1] == []


def test_without_features_the_view_computes_them_in_the_background(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "fresh", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    write_checkpoint(run_dir)  # a real last.pt, which "best" falls back to
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert "No features of the validation images" in texts(at) and not at.get("bidi_component")
    at.button(key="ex_atlas_start_features").click().run()
    job = caches.jobs().get(("features", str(run_dir), "val", "best"))
    assert job is not None and job.wait(60) and job.error is None and job.result is None  # kept on disk only
    at.run()
    f = embeddings.cached_features(run_dir, "val", "best")
    traces, _ = chart(at)
    assert len(f.indices) == 100 and sorted(np.concatenate([images(t) for t in traces])) == sorted(f.indices)
    at.session_state[explain_atlas.AREAS_KEY] = (map_key(run_dir),
                                                 (Area("box", (-1e9, 1e9), (-1e9, 1e9)),))
    at.run()
    at.toggle(key="ex_atlas_cam").set_value(True).run()  # the selection's gallery, with Grad-CAM
    assert not at.exception, [e.value for e in at.exception]
    grid = html_blocks(at)[-1]
    assert grid.count('class="rs-card"') == 30 == grid.count('class="rs-heatmap"')
    assert "the predictions of the features' checkpoint, last.pt" in texts(at)


def test_tsne_without_its_map_offers_to_compute_it_or_says_how_to_install(folders, cifar_dir, planted):  # noqa: F811
    run_dir = make_run(folders, "tsne", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    f = planted(run_dir, "test", n=50)
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    at.segmented_control(key="ex_atlas_split").set_value("test").run()
    at.segmented_control(key="ex_atlas_method").set_value(projections.TSNE).run()
    missing = projections.missing(projections.TSNE)
    if missing:
        (warning,) = at.warning
        assert "openTSNE" in warning.value and "requirements-atlas.txt" in warning.value
    else:
        assert "No t-SNE map of these features yet" in texts(at)
    projections.save_projection(run_dir, "test", "best", projections.TSNE, projections.pca(f.features)[::-1].copy(),
                                f.features)  # as the job leaves it
    assert at.query_params["images"] == "test" and at.query_params["map"] == "t-SNE"
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS, "images": "test", "map": "t-SNE"})  # a reload
    traces, _ = chart(at)  # the cached map, drawn whether or not openTSNE is here
    assert not at.warning and sorted(np.concatenate([images(t) for t in traces]).tolist()) == list(range(50))
    assert "mapped to 2-D by t-SNE" in texts(at)


def test_the_training_images_take_their_data_map_regions(folders, cifar_dir, planted):  # noqa: F811
    run_dir = make_run(folders, "regions", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    planted_record(run_dir, cifar_dir, n=120)
    planted(run_dir, "train", n=150)  # 30 training images the record does not hold
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert "data-map region" not in at.selectbox(key="ex_atlas_colour_val").options  # not the training images
    at.segmented_control(key="ex_atlas_split").set_value("train").run()
    at.selectbox(key="ex_atlas_colour_train").set_value("data-map region").run()
    d = analyse(runs.load_dynamics(run_dir))
    shown = {t["name"]: sorted(images(t).tolist()) for t in chart(at)[0]}
    for code, name in enumerate(("easy-to-learn", "ambiguous", "hard-to-learn")):
        assert shown.get(name, []) == sorted(d.record.indices[d.data_map.region == code].tolist())
    assert shown["not presented"] == sorted([*d.record.indices[d.data_map.region == -1].tolist(), *range(120, 150)])


def cosine_nearest(query: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: the k rows of base most similar to query, and their similarities."""
    sims = (base / np.linalg.norm(base, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")[:k]
    return order, sims[order]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_gallery_image_opens_its_nearest_training_images_beside_the_knn_accuracy(folders, cifar_dir,  # noqa: F811
                                                                                 planted):
    run_dir = make_run(folders, "similar", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    f, train = planted(run_dir), planted(run_dir, "train", n=150)
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert metrics(at) == {"Checkpoint's accuracy": f"{f.accuracy:.1%}",
                           "k-NN accuracy (k = 10)": f"{split_knn_accuracy(f, train, 10):.1%}"}
    at.session_state[explain_atlas.CELL_KEY] = (map_key(run_dir), (2, 3))
    at.run()
    shown = cards(at)
    picked = shown[0]  # true 2, predicted 3: a mistake
    assert at.selectbox(key="ex_atlas_similar").options == [f"#{i}: true bird, predicted cat" for i in shown]
    at.selectbox(key="ex_atlas_similar").set_value(picked).run()
    assert not at.exception, [e.value for e in at.exception]
    rows, sims = cosine_nearest(f.features[picked].astype(np.float64), train.features.astype(np.float64), 10)
    strip = html_blocks(at)[-1]
    assert [int(i) for i in re.findall(r'data-index="(\d+)"', strip)] == train.indices[rows].tolist()
    assert [int(t) for t in re.findall(r'data-true="(\d+)"', strip)] == train.labels[rows].tolist()
    assert re.findall(r"similarity (\d\.\d{3})", strip) == [f"{s:.3f}" for s in sims]
    labels = train.labels[rows]
    assert md_escape(f"{(labels == 3).sum()} of its 10 nearest training images carry the predicted class cat "
                     f"(and {(labels == 2).sum()} its true class bird).") in texts(at)


def test_without_the_training_features_the_view_offers_to_compute_them(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "untrained", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    write_checkpoint(run_dir)  # a real last.pt, which "best" falls back to, for the job
    f = embeddings.compute_features(run_dir, "val", "best")
    at = open_page(EXPLAIN, {"view": explain_atlas.ATLAS})
    assert "No features of the training images under the best checkpoint yet" in texts(at)
    assert list(metrics(at)) == ["Checkpoint's accuracy"]
    at.session_state[explain_atlas.AREAS_KEY] = (map_key(run_dir),
                                                 (Area("box", (-1e9, 1e9), (-1e9, 1e9)),))
    at.run()
    picked = cards(at)[0]
    at.selectbox(key="ex_atlas_similar").set_value(picked).run()
    assert "They need the training images' features under this checkpoint" in texts(at)
    at.button(key="ex_atlas_start_features").click().run()
    job = caches.jobs().get(("features", str(run_dir), "train", "best"))
    assert job is not None and job.wait(60) and job.error is None
    at.run()
    train = embeddings.cached_features(run_dir, "train", "best")
    assert train is not None and metrics(at)["k-NN accuracy (k = 10)"] == f"{split_knn_accuracy(f, train, 10):.1%}"
    assert html_blocks(at)[-1].count('class="rs-card"') == 10  # the picked image's nearest training images
    assert "nearest training images carry" in texts(at)
