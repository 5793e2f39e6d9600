"""The atlas: 2-D maps of features (resnet_core.projections) and their cache, the selection
on the map and its cells (atlas_selection), the figures (atlas_figures), the background
jobs, and Explain's view "Atlas (features)" through AppTest (a drawn area set as the chart's
callback sets it, explain_atlas.AREAS_KEY; a clicked cell as CELL_KEY)."""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

from resnet_core import projections
from resnet_core.dashboard import atlas_figures, atlas_selection
from resnet_core.dashboard.background_jobs import Jobs
from resnet_core.dashboard.cell_selection import Cell
from resnet_core.dashboard.data_map_selection import Area
from resnet_core.data_maps import NOT_PRESENTED


def clustered(n: int = 60, dims: int = 8, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(0, 5, (classes, dims))
    return (centres[labels] + rng.normal(0, 1, (n, dims))).astype(np.float32), labels.astype(np.int64)


# Projections --------------------------------------------------------------------------------

def test_pca_is_the_top_two_components_of_numpy_svd():
    x, _ = clustered()
    coords = projections.pca(x)
    centred = x.astype(np.float64) - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * s[:2]
    assert coords.shape == (60, 2) and coords.dtype == np.float32
    for k in range(2):  # a component's sign is a convention: the largest loading positive
        assert np.allclose(np.abs(coords[:, k]), np.abs(expected[:, k]), atol=1e-4)
    assert np.allclose(projections.pca(x[::-1])[::-1], coords, atol=1e-4)  # same map whatever the row order


def test_pca_of_one_dimensional_features_is_a_line_and_of_none_an_error():
    coords = projections.pca(np.arange(5, dtype=np.float32)[:, None])
    assert coords.shape == (5, 2) and np.all(coords[:, 1] == 0)
    with pytest.raises(ValueError, match="non-empty"):
        projections.pca(np.zeros((0, 4), np.float32))


def test_a_cached_map_is_reused_for_the_same_features_and_not_for_others(tmp_path):
    x, _ = clustered()
    coords = projections.pca(x)
    assert projections.cached_projection(tmp_path, "val", "best", projections.TSNE, x) is None  # none yet
    path = projections.save_projection(tmp_path, "val", "best", projections.TSNE, coords, x)
    assert path == tmp_path / "features" / "val_best_tsne.npz"
    assert np.array_equal(projections.cached_projection(tmp_path, "val", "best", projections.TSNE, x), coords)
    assert projections.cached_projection(tmp_path, "val", "last", projections.TSNE, x) is None  # another checkpoint
    changed = x.copy()
    changed[3, 1] += 1e-3  # features recomputed from a new checkpoint
    assert projections.cached_projection(tmp_path, "val", "best", projections.TSNE, changed) is None
    assert projections.cached_projection(tmp_path, "val", "best", projections.TSNE, x[:-1]) is None


@pytest.mark.parametrize("damage", ["truncated", "not npz", "wrong shape", "no digest", "symlink"])
def test_a_damaged_map_reads_as_none(tmp_path, damage):
    x, _ = clustered()
    path = projections.save_projection(tmp_path, "test", "last", projections.TSNE, projections.pca(x), x)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "not npz":
        path.write_text("hello")
    elif damage == "wrong shape":
        np.savez(path, coords=np.zeros((60, 3), np.float32),
                 features_digest=np.frombuffer(projections.features_digest(x), np.uint8))
    elif damage == "no digest":
        np.savez(path, coords=np.zeros((60, 2), np.float32))
    else:
        other = tmp_path / "elsewhere.npz"
        path.rename(other)
        path.symlink_to(other)
    assert projections.cached_projection(tmp_path, "test", "last", projections.TSNE, x) is None


def test_without_opentsne_tsne_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert "requirements-atlas.txt" in projections.missing(projections.TSNE)
    assert projections.missing(projections.PCA) is None


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("openTSNE") is None, reason="the atlas extra is not installed")
def test_tsne_separates_clusters_and_reports_progress():
    x, labels = clustered(n=300, dims=16)
    seen = []
    coords = projections.project(x, projections.TSNE, lambda done, total: seen.append((done, total)))
    assert coords.shape == (300, 2) and np.isfinite(coords).all()
    assert seen[-1] == (projections.TSNE_ITERATIONS, projections.TSNE_ITERATIONS)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    nearest = np.argsort(((coords[:, None] - coords[None]) ** 2).sum(-1), axis=1)[:, 1:6]
    assert (labels[nearest] == labels[:, None]).mean() > 0.95


# Selection ----------------------------------------------------------------------------------

def test_the_selection_is_the_points_in_the_areas_mistakes_first():
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [10, 10]], np.float32)
    labels = np.array([0, 1, 1, 0, 1])
    preds = np.array([0, 0, 1, 1, 1])
    conf = np.array([0.9, 0.6, 0.3, 0.8, 0.5], np.float32)
    chosen = atlas_selection.select([Area("box", (-1, 3.5), (-1, 3.5))], coords, labels, preds, conf, 2)
    assert chosen.rows.tolist() == [3, 1, 2, 0]  # wrong: 0.8 then 0.6; right: 0.3 then 0.9
    assert chosen.counts.tolist() == [[1, 1], [1, 1]]
    assert chosen.by_true().tolist() == [2, 2] and chosen.by_predicted().tolist() == [2, 2]
    lasso = Area("lasso", (5, 15, 15), (5, 5, 15))  # a triangle around the last point only
    assert atlas_selection.select([lasso], coords, labels, preds, conf, 2).rows.tolist() == [4]
    everything = atlas_selection.select((), coords, labels, preds, conf, 2, Cell(1, 0))
    assert everything.rows.tolist() == [1] and everything.counts.sum() == 1


def test_counts_text_names_the_largest_classes_first():
    assert atlas_selection.counts_text(np.array([0, 5, 2]), ["a", "b", "c"]) == "b 5 · c 2"
    assert atlas_selection.counts_text(np.array([1, 5, 2, 1]), list("abcd"), top=2) == "b 5 · c 2 · 2 more"


def test_region_codes_follow_the_record_by_dataset_index():
    codes = atlas_figures.region_codes(np.array([7, 3, 99]), np.array([3, 5, 7]), np.array([2, 0, 1]))
    assert codes.tolist() == [1, 2, NOT_PRESENTED]
    assert atlas_figures.region_codes(np.array([1]), np.array([], np.int64), np.array([], np.int8)).tolist() == [-1]


# Figures ------------------------------------------------------------------------------------

def figure_args(n: int = 30):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, n)
    preds = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 3)
    return rng.normal(size=(n, 2)), np.arange(100, 100 + n), labels, preds, rng.random(n).astype(np.float32)


@pytest.mark.parametrize("colour_by, names", [
    (atlas_figures.TRUE, ["a", "b", "c"]), (atlas_figures.PREDICTED, ["a", "b", "c"]),
    (atlas_figures.CORRECT, ["right", "wrong"]), (atlas_figures.CONFIDENCE, ["image"])])
def test_the_atlas_draws_every_image_once_in_webgl(colour_by, names):
    coords, indices, labels, preds, conf = figure_args()
    fig = atlas_figures.atlas_figure(coords, indices, labels, preds, conf, ["a", "b", "c"], colour_by)
    assert [t.name for t in fig.data] == names
    assert all(t.type == "scattergl" for t in fig.data)
    shown = np.concatenate([np.asarray(t.customdata)[:, 0] for t in fig.data])
    assert sorted(shown.astype(int).tolist()) == indices.tolist()
    if colour_by == atlas_figures.CORRECT:
        wrong = np.asarray(fig.data[1].customdata)[:, 0].astype(int) - 100
        assert (labels[wrong] != preds[wrong]).all() and len(wrong) == int((labels != preds).sum())
    assert fig.layout.dragmode == "drawrect"


def test_the_atlas_outlines_the_highlighted_images_and_colours_regions():
    coords, indices, labels, preds, conf = figure_args()
    regions = np.array([0, 1, 2, NOT_PRESENTED] * 7 + [0, 0])
    fig = atlas_figures.atlas_figure(coords, indices, labels, preds, conf, ["a", "b", "c"], atlas_figures.REGION,
                                     regions=regions, highlight=indices % 10 == 0, highlight_name="cell")
    assert [t.name for t in fig.data] == ["easy-to-learn", "ambiguous", "hard-to-learn", "not presented", "cell"]
    assert np.asarray(fig.data[-1].customdata)[:, 0].astype(int).tolist() == [100, 110, 120]
    with pytest.raises(ValueError, match="regions"):
        atlas_figures.atlas_figure(coords, indices, labels, preds, conf, ["a", "b", "c"], atlas_figures.REGION)


# Background jobs ----------------------------------------------------------------------------

def test_a_job_reports_progress_then_its_result_and_a_failed_one_its_error():
    release = threading.Event()

    def work(progress):
        progress(1, 4)
        release.wait(10)
        return "done"

    jobs = Jobs()
    job = jobs.start("k", "work", work)
    assert jobs.start("k", "again", lambda p: "other") is job  # one job a key
    while job.fraction == 0:
        release.wait(0.01)
    assert job.fraction == 0.25 and not job.finished
    release.set()
    assert job.wait(10) and job.result == "done" and job.fraction == 1.0 and job.error is None
    failed = jobs.start("bad", "bad", lambda p: 1 / 0)
    assert failed.wait(10) and failed.error == "ZeroDivisionError: division by zero"
    again = jobs.start("bad", "bad", lambda p: "fixed")  # a failed job is tried again
    assert again is not failed and again.wait(10) and again.result == "fixed"
    redone = jobs.start("k", "again", lambda p: "recomputed")  # and a finished one (its result may be stale)
    assert redone is not job and redone.wait(10) and redone.result == "recomputed"
    jobs.forget("k")
    assert jobs.get("k") is None
