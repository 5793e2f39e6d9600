"""Explain's atlas: a 2-D map of a split's penultimate features under a checkpoint
(resnet_core.embeddings), PCA at once or t-SNE computed in the background and cached
(resnet_core.projections). An area drawn on the map opens its images, with Grad-CAM, and
counts them per confusion-matrix cell; a click on a cell of the matrix beside the map
outlines that cell's images on it and narrows the gallery to them. Beside the checkpoint's
accuracy, the k-NN accuracy of the features against the training images' (k = 10); under
the gallery, the nearest training images of one of its images (similar_section.py)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import streamlit as st

from app_pages import caches, common, feature_jobs, similar_section
from app_pages.area_select_chart import area_select_chart
from resnet_core import evaluation_labels, projections, runs
from resnet_core.dashboard import (atlas_figures, atlas_selection, cell_selection, class_groups, confusion_figures,
                                   data_map_selection, gallery_cards, gallery_records, run_images, similar_images)
from resnet_core.formatting import md_escape
from resnet_core.projections import METHODS, PCA, project, save_projection

ATLAS = "Atlas (features)"
VIEWS = (ATLAS,)
PER_PAGE = 30
AREAS_KEY = "ex_atlas_areas"  # our own copy of the drawn areas: (map key, areas)
CELL_KEY = "ex_atlas_cell"  # our own copy of the clicked cell: (map key, (true, pred))
SPLIT_NAMES = {**evaluation_labels.SPLIT_NAMES, "val": evaluation_labels.VALIDATION}
# The most classes the selection's matrix shows (100, CIFAR-100's, would leave a cell 3 px), and
# its height: in 380 px, plotly named every other row of 20 (Chromium); 520 px names them all.
MATRIX_CLASSES = 20


def _matrix_height(n_classes: int) -> int:
    return 380 if n_classes <= 10 else 520


def _kept(key: str, map_key: tuple):
    """What the session keeps under key for this map (run, split, checkpoint, method), else None."""
    kept = st.session_state.get(key)
    return kept[1] if kept and kept[0] == map_key else None


def _on_areas(map_key: tuple) -> None:
    """on_select: keep the area drawn; a shape too small to select anything (a freeform path
    of fewer than three corners) leaves the kept one as it is (Clear removes it)."""
    areas = data_map_selection.selection_areas(st.session_state.get("ex_atlas"))
    if areas:
        st.session_state[AREAS_KEY] = (map_key, areas)
        st.session_state["ex_page_atlas"] = 1


def _on_cell(map_key: tuple, classes: list[str]) -> None:
    cell = cell_selection.selection_from_event(st.session_state.get("ex_atlas_cm"), classes)
    if cell is not None:
        st.session_state[CELL_KEY] = (map_key, (cell.true, cell.pred))
        st.session_state["ex_page_atlas"] = 1


def _choice(where, label: str, options, key: str, param: str, fallback: str, **kwargs) -> str:
    """A segmented control whose choice is kept in the URL (?param=): a reload lands on the
    same map, where a job still running shows its progress."""
    common.seed_from_query(key, param, list(options), fallback, label.lower())
    value = where.segmented_control(label, options, key=key, required=True, **kwargs) or fallback
    common.set_query(param, value)
    return value


def _pickers(info: runs.RunInfo) -> tuple[str, str, str, str]:
    c1, c2, c3, c4 = st.columns([3, 2, 2, 3])
    carved = evaluation_labels.evaluation_labels(info.config).val_source == "train"
    splits = [s for s in runs.SPLITS if s != "val" or carved]  # features of a validation split carved from training
    split = _choice(c1, "Images", splits, "ex_atlas_split", "images", "val" if carved else "test",
                    format_func=SPLIT_NAMES.get)
    which = _choice(c2, "Checkpoint", list(runs.CHECKPOINTS), "ex_atlas_ckpt", "checkpoint", "best")
    method = _choice(c3, "Map", METHODS, "ex_atlas_method", "map", PCA)
    options = list(atlas_figures.COLOUR_BY)
    if split != "train" or not runs.dynamics_epochs(info.path):  # the record holds the training images only
        options.remove(atlas_figures.REGION)
    colour_by = c4.selectbox("Colour by", options, key=f"ex_atlas_colour_{split}")
    return split, which, method, colour_by


def _map_work(info: runs.RunInfo, split: str, which: str, method: str, features: np.ndarray) -> Callable:
    def work(progress):
        return save_projection(info.path, split, which, method, project(features, method, progress), features)
    return work


def _gallery(info: runs.RunInfo, split: str, f, train, rows: np.ndarray, classes: list[str]) -> None:
    """One page of cards of these rows of the features, with the Grad-CAM toggle, and the
    similar training images of one of them."""
    if len(rows) == 0:
        st.caption("No images here.")
        return
    page = common.page_picker(len(rows), PER_PAGE, "ex_page_atlas", width=220)
    records = similar_images.feature_records(f)
    source = "train" if split == "train" else run_images.image_source(info.config, split)
    items = gallery_records.records(records, rows[page.start:page.stop],
                                    paths=run_images.source_paths(info.path, source))
    images_from = common.image_folder(info)
    images, origin = common.source_images(source, records, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(rows):,} · the mistakes first, the most confident "
               f"first, then the right ones, the least confident first · {origin}")
    heatmaps, title = (common.gradcam_toggle(info, source, items, images_from, "ex_atlas_cam",
                                             f"the predictions of the features' checkpoint, {f.checkpoint_file}")
                       if images is not None else ({}, ""))
    extras = gallery_cards.CardExtras(heatmaps=heatmaps, heatmap_title=title)
    st.html(gallery_cards.gallery_html(items, images, classes, size=96, total=len(rows), extras=extras))
    similar_section.similar_training_images(info, split, items, classes, "ex_atlas_similar", (f, train))


def _selection(info: runs.RunInfo, split: str, f, train, coords: np.ndarray, classes: list[str], map_key: tuple,
               areas: tuple, cell: cell_selection.Cell | None) -> None:
    """The matrix of the selected images (all without an area), a click on which outlines a
    cell's images on the map, and the selection's gallery."""
    chosen = atlas_selection.select(areas, coords, f.labels, f.predictions, f.confidence, len(classes))
    shown = class_groups.busiest_classes(chosen.counts, MATRIX_CLASSES, classes, info.superclass_of).tolist()
    left, right = st.columns([2, 3], gap="medium")
    with left:
        # The whole matrix with a grid of the shown classes: each cell's share of its true and
        # predicted class counts every image, not only those of the classes shown.
        grid = confusion_figures.Grid(shown, shown, [(t, p) for t in shown for p in shown])
        st.plotly_chart(confusion_figures.confusion_figure(
                            chosen.counts, classes, selected=None if cell is None else (cell.true, cell.pred),
                            height=_matrix_height(len(shown)), grid=grid,
                            group=[info.superclasses[s] for s in info.superclass_of]),
                        key="ex_atlas_cm", on_select=lambda: _on_cell(map_key, classes), selection_mode="points",
                        config={"displayModeBar": False})
        cut = len(shown) < len(classes)
        few = f" (the {len(shown)} classes with the most of these images)" if cut else ""
        st.caption(("The drawn area's" if areas else "All the images'") + f" true (rows) and predicted (columns) "
                   f"classes{few}. Click a cell to outline its images on the map and show only them below.")
    with right:
        n = len(chosen.rows)
        st.markdown(f"**{n:,} images {'in the area' if areas else 'in all'}** · "
                    f"{int((f.labels[chosen.rows] != f.predictions[chosen.rows]).sum()):,} wrong")
        st.markdown("By true class: " + md_escape(atlas_selection.counts_text(chosen.by_true(), classes)) +
                    "  \nBy predicted class: " + md_escape(atlas_selection.counts_text(chosen.by_predicted(), classes)))
        b1, b2 = st.columns(2)
        if areas:
            b1.button("Clear the area", key="ex_atlas_clear", on_click=st.session_state.pop, args=(AREAS_KEY, None),
                      icon=":material/close:")
        if cell is not None:
            b2.button("Clear the cell", key="ex_atlas_clear_cell", on_click=st.session_state.pop,
                      args=(CELL_KEY, None), icon=":material/close:")
    if not areas and cell is None:
        st.info("Draw a box (or, with the mode bar's pen, a freeform area) on the map, or click a cell of the "
                "matrix, to see those images here.", icon=":material/touch_app:")
        return
    if cell is not None:
        st.markdown(f"**true {md_escape(classes[cell.true])} → predicted {md_escape(classes[cell.pred])}**"
                    + (" in the area" if areas else ""))
        chosen = atlas_selection.select(areas, coords, f.labels, f.predictions, f.confidence, len(classes), cell)
    _gallery(info, split, f, train, chosen.rows, classes)


def _map(info: runs.RunInfo, split: str, which: str, method: str):
    """The features and their map, or None after saying why there are none yet (with a
    button that computes them in the background, or its progress)."""
    found = caches.features(info.path, split, which)
    if found is None:
        st.info(f"No features of the {SPLIT_NAMES[split]} images under the {which} checkpoint yet (or the "
                "checkpoint changed since): they are computed once, then read from the run folder (features/).",
                icon=":material/scatter_plot:")
        feature_jobs.background(("features", str(info.path), split, which), "Computing the features",
                                "Compute the features", feature_jobs.features_work(info, split, which),
                                "ex_atlas_start_features")
        return None
    coords = caches.atlas_map(info.path, split, which, method, found)
    if coords is None:
        missing = projections.missing(method)
        if missing:
            st.warning(md_escape(missing), icon=":material/extension_off:")
            return None
        st.info(f"No {method} map of these features yet: it is computed in the background (about a minute for "
                "10,000 images, four for 50,000, on two cores) and kept in the run folder.",
                icon=":material/scatter_plot:")
        feature_jobs.background((method, str(info.path), split, which), f"Computing the {method} map",
                                f"Compute the {method} map", _map_work(info, split, which, method, found[0].features),
                                f"ex_atlas_start_{method}")
        return None
    return found[0], coords, found[1]


def _accuracies(info: runs.RunInfo, split: str, which: str, f):
    """The checkpoint's accuracy beside the k-NN accuracy of its features, and the training
    images' features that measures it (None, with a button that computes them, until they are)."""
    found = (f, None) if split == "train" else caches.features(info.path, "train", which)
    left, right = st.columns([1, 3])
    left.metric("Checkpoint's accuracy", f"{f.accuracy:.1%}", help=f"{f.checkpoint_file} on these images")
    with right:
        if found is None:
            st.info(f"No features of the training images under the {which} checkpoint yet: the k-NN accuracy of "
                    "these features and each image's similar training images need them.",
                    icon=":material/group_work:")
            feature_jobs.background(("features", str(info.path), "train", which),
                                    "Computing the training images' features", "Compute the training images' features",
                                    feature_jobs.features_work(info, "train", which), "ex_atlas_start_features")
            return None
        st.metric(f"k-NN accuracy (k = {similar_images.K})",
                  f"{caches.knn_accuracy(info.path, which, f, found[0], similar_images.K):.1%}",
                  help=f"each image takes the majority label of its {similar_images.K} nearest training images in "
                       "these features (cosine)" + (", its own entry left out" if split == "train" else ""))
    return found[0]


def atlas_view(info: runs.RunInfo) -> None:
    split, which, method, colour_by = _pickers(info)
    shown = _map(info, split, which, method)
    if shown is None:
        return
    f, coords, digest = shown
    classes = info.classes or [str(i) for i in range(int(max(f.labels.max(), f.predictions.max())) + 1)]
    map_key = (info.run_id, split, which, method, digest)  # new features (a new checkpoint): a new map
    areas = _kept(AREAS_KEY, map_key) or ()
    kept_cell = _kept(CELL_KEY, map_key)
    cell = cell_selection.Cell(*kept_cell) if kept_cell else None
    regions = None
    if colour_by == atlas_figures.REGION:
        try:
            d = caches.dynamics(info.path)
            regions = atlas_figures.region_codes(f.indices, d.record.indices, d.data_map.region)
        except runs.RunFolderError as e:
            st.warning(f"The record of the training images cannot be read: {md_escape(e)}",
                       icon=":material/broken_image:")
            colour_by = atlas_figures.TRUE
    highlight = atlas_selection.cell_mask(f.labels, f.predictions, cell) if cell else None
    fig = atlas_figures.atlas_figure(
        coords, f.indices, f.labels, f.predictions, f.confidence, classes, colour_by, regions, highlight,
        f"true {classes[cell.true]} → predicted {classes[cell.pred]}" if cell else "",
        (f"{method} 1", f"{method} 2"), superclasses=info.superclasses, superclass_of=info.superclass_of)
    area_select_chart(fig, key="ex_atlas", on_select=lambda: _on_areas(map_key), areas=areas)
    st.caption(f"Each of the {len(coords):,} {SPLIT_NAMES[split]} images at its penultimate features (after the "
               f"global pooling, {f.features.shape[1]}-d, the {which} checkpoint: {f.checkpoint_file}), mapped to "
               f"2-D by {method}: " + ("the two directions of largest variance." if method == PCA else
                                       "nearby points are images the network finds alike; distances between "
                                       "clusters mean little."))
    train = _accuracies(info, split, which, f)
    _selection(info, split, f, train, coords, classes, map_key, areas, cell)
