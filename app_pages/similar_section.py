"""Under a gallery, the nearest training images of one of its images in a checkpoint's
penultimate features (cosine, exact: resnet_core.dashboard.similar_images), with their labels
and similarities, and how many carry the class its card shows. The atlas passes the features
it maps; the galleries of Analyze and Explain, which show one epoch's predictions, use the
best checkpoint's (last.pt's where there is no best.pt), computed in the background when
they are not cached yet."""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from app_pages import caches, common, feature_jobs
from resnet_core import runs
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import gallery_cards, gallery_records, run_images, similar_images
from resnet_core.formatting import md_escape

CHECKPOINT = "best"  # the galleries' neighbours: features of best.pt, else last.pt (run_model.checkpoint_file)


def _cached(info: runs.RunInfo, split: str, key: str):
    """The split's and the training images' features under the best checkpoint, or None after
    one line saying which are missing and the button that computes them in the background.
    A run whose test set stood in for validation (format 1) shows test images as "val"."""
    if split == "val" and evaluation_labels(info.config).val_source == "test":
        split = "test"
    found = {s: caches.features(info.path, s, CHECKPOINT) for s in dict.fromkeys((split, "train"))}
    missing = tuple(s for s, f in found.items() if f is None)
    if not missing:
        return found[split][0], found["train"][0]
    names = " and ".join("the training images'" if s == "train" else f"these {s} images'" for s in missing)
    st.info(f"Similar training images need {names} features under the {CHECKPOINT} checkpoint: computed once, "
            "then read from the run folder (features/).", icon=":material/group_work:")
    for s in missing:  # a job a split, as the atlas keys its own: one computation of each file at a time
        what = "training" if s == "train" else s
        feature_jobs.background(("features", str(info.path), s, CHECKPOINT), f"Computing the {what} features",
                                f"Compute the {what} features", feature_jobs.features_work(info, s, CHECKPOINT),
                                f"{key}_start_{s}")
    return None


def similar_training_images(info: runs.RunInfo, split: str, items: Sequence[gallery_records.GalleryRecord],
                            classes: list[str], key: str, features=None) -> None:
    """A picker of the shown cards' images (items, of the split) and the picked one's nearest
    training images. features: the atlas's (split's Features, training images' Features or
    None while they are being computed above); None: the best checkpoint's, from the cache."""
    shown = {r.index: r for r in items}
    picked = st.selectbox(
        f"Similar training images ({similar_images.K} nearest in " + ("these features" if features else "the features "
        f"of the {CHECKPOINT} checkpoint") + ", cosine) of", list(shown), index=None, key=key,
        placeholder="an image shown above",
        format_func=lambda i: f"#{i}: true {classes[shown[i].true]}, predicted {classes[shown[i].pred]}")
    if picked is None:
        return
    if features is not None and features[1] is None:
        st.caption("They need the training images' features under this checkpoint: compute them above.")
        return
    pair = features or _cached(info, split, key)
    if pair is None:
        return
    f, train = pair
    try:
        near = similar_images.similar_images(f, train, picked, prediction=shown[picked].pred)
    except ValueError as e:  # features of other images than the gallery's (another validation split)
        st.caption(md_escape(f"{e}: recompute the features."))
        return
    records = similar_images.feature_records(train)
    images, _ = common.source_images("train", records, common.image_folder(info))
    notes = {int(i): f"similarity {s:.3f}" for i, s in zip(near.indices, near.similarities, strict=True)}
    paths = run_images.source_paths(info.path, "train")
    st.html(gallery_cards.gallery_html(gallery_records.records(records, near.rows, paths=paths), images, classes,
                                       size=64,
                                       extras=gallery_cards.CardExtras(notes=notes)))
    if features:
        st.markdown(md_escape(similar_images.verdict(near, classes)))
        return
    epoch = similar_images.checkpoint_epoch(info, f.checkpoint_file)
    source = similar_images.features_caption(f.checkpoint_file, epoch)
    st.caption(f"Neighbours in the features of {source}; the predicted class is the card's, of the epoch the gallery "
               "shows.")
    st.markdown(md_escape(similar_images.verdict(near, classes, "the card's")))
