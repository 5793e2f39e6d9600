"""Explain's view of the test images that are near-duplicates of training images, in pixel
space (resnet_core.duplicates): how many, the run's accuracy on them against the rest, and
the pairs side by side, most similar first."""

from __future__ import annotations

import streamlit as st

from app_pages import caches, common
from resnet_core import cifar, duplicates, duplicates_cache, runs
from resnet_core.cifar import CifarData
from resnet_core.dashboard import duplicate_pairs, gallery_cards, run_images
from resnet_core.formatting import md_escape

DUPLICATES = "Near-duplicates (test/train)"
VIEWS = (DUPLICATES,)
PER_PAGE = 24


def _nearest(data: CifarData, images_from: run_images.ImageFolder) -> duplicates.Nearest:
    """Every test image's nearest training image, kept in the runs folder's cache; a progress bar the first time."""
    bar = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(st.progress(0.0))
        bar[0].progress(done / total, text=f"Comparing test images with the training images: {done:,} of {total:,}")

    settings = {k: v for k, v in images_from.settings if k != "cache_dir"}
    nearest = duplicates_cache.cached_nearest(data.dataset, images_from.path, common.runs_dir(), progress, data,
                                              settings)
    if bar:
        bar[0].empty()
    return nearest


def _test_predictions(info: runs.RunInfo, data: CifarData, folder) -> tuple[dict | None, str]:
    """The run's last recorded test predictions and which they are, or None and why not."""
    epochs = runs.recorded_epochs(info.path, "test")
    if not epochs:
        return None, "The run has no test predictions yet (a run with a validation split tests once, at the end)."
    try:
        preds = caches.predictions(info.path, "test", epochs[-1])
    except runs.RunFolderError as e:
        return None, f"The test predictions cannot be read: {md_escape(e)}"
    problem = run_images.labels_match(data.test_labels, preds).problem(folder, "test")
    if problem:
        return None, md_escape(problem)
    every = (info.config.get("resolved") or {}).get("test_every_epoch")
    which = (f"epoch {epochs[-1]}'s test evaluation (the last recorded)" if every
             else f"the test evaluation of the final weights (epoch {epochs[-1]})")
    return preds, f"Predictions: {which}."


def _trained_twins(info: runs.RunInfo, found: duplicates.Duplicates) -> duplicates.Duplicates:
    """The pairs whose twin the run trained on, from its record of its training images (a run
    without one: every pair, as no record says otherwise)."""
    if not runs.dynamics_epochs(info.path):
        return found
    try:
        return found.with_twin_in(caches.dynamics(info.path).record.indices)
    except runs.RunFolderError:
        return found


def view(info: runs.RunInfo) -> None:
    images_from = common.image_folder(info)
    try:
        data = caches.loaded_store(images_from.path, images_from.dataset, images_from.settings).get()
    except Exception as e:  # no data folder here
        st.warning(f"No {cifar.dataset_title(images_from.dataset)} to compare: {md_escape(e)}",
                   icon=":material/image_not_supported:")
        return
    changed = run_images.files_problem(data, images_from.run_dir, images_from.path, ("train", "test"))
    if changed:  # an image folder run whose folder no longer holds the images it recorded
        st.warning(md_escape(changed), icon=":material/image_not_supported:")
        return
    found = _nearest(data, images_from).duplicates()
    preds, which = _test_predictions(info, data, images_from.path)
    n_test = len(data.test_images)
    k1, k2 = st.columns(2)
    k1.metric("Test images with a training twin", f"{len(found):,}",
              help=f"{100 * len(found) / max(n_test, 1):.1f}% of the {n_test:,} test images")
    if preds is not None:
        trained = _trained_twins(info, found)
        some = len(trained) < len(found)  # the others' test images are, to this run, like any other
        acc = duplicates.accuracy_split(preds, trained)
        k2.metric("Accuracy on those it trained the twin of" if some else "Accuracy on them",
                  duplicate_pairs.percent(acc.on_duplicates),
                  help=f"against {duplicate_pairs.percent(acc.on_rest)} on the rest")
        if some:
            st.markdown(md_escape(duplicate_pairs.trained_twins_text(len(trained), len(found))))
        st.markdown(duplicate_pairs.accuracy_text(acc, trained_only=some))
    st.caption(f"{which} A twin: the nearest training image in pixels, at most {duplicates.THRESHOLD:g} grey levels "
               "(0-255) of mean |difference| at the best shift of up to one pixel: exact copies, re-encoded, "
               "recoloured or shifted ones (Barz & Denzler 2020 found 3.3% with CNN features, which also match "
               "re-cropped or mirrored copies). Computed from the data folder alone, once; most similar first. "
               f"Images from {md_escape(images_from.path)}, {md_escape(images_from.note)}.")
    if not len(found):
        return
    page = common.page_picker(len(found), PER_PAGE, "ex_page_dup", width=220)
    cards = duplicate_pairs.pair_cards(found, page.start, page.stop, data.test_labels, data.train_labels, preds)
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(found):,}: test image (left), training twin (right)")
    st.html(gallery_cards.pair_gallery_html(cards, data.test_images, data.train_images, list(data.classes),
                                            total=len(found)))
