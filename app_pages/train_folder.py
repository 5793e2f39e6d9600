"""The Train form's image folder: its path, image size, resize rule, test share and bad-image
choice, and the preview of what a run would train on (class counts, sampled sizes, a few
images of each class as the network will see them, warnings). Functions only:
app_pages/train_form.py calls them."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_pages import caches, common
from resnet_core import cifar
from resnet_core.config import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from resnet_core.dashboard.folder_preview import (SHOWN_CLASSES, SHOWN_PER_CLASS, FolderPreview, counts_rows,
                                                  folder_warnings, sizes_text, split_counts, split_note)
from resnet_core.dashboard.form import TrainForm, form_number
from resnet_core.formatting import md_escape
from resnet_core.image_folder import BAD_IMAGES
from resnet_core.images import RESIZE_RULES

DATASET_LABELS = {cifar.IMAGE_FOLDER: "Image folder"}
DATASET_HELP = ("CIFAR-10: 10 classes; CIFAR-100: 100 classes in 20 superclasses (the data folder must hold them: "
                "see Home). Image folder: your own images, ROOT/train/<class>/* and optionally ROOT/test/<class>/*.")
RESIZE_HELP = ("crop: the shorter side to the image size, then the centre square (a CIFAR image is a square around "
               "its object); squash: both sides to the image size, the whole image with its shape changed")
SHOWN_WIDTH = 64  # px each preview image is drawn at, whatever the image size


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name) or cifar.dataset_title(name)


def preview(form: TrainForm, images: bool = True) -> FolderPreview | None:
    """The preview of the form's image folder (cached); None for a CIFAR form or an empty path."""
    root = str(form.data_dir or "").strip()
    if form.dataset != cifar.IMAGE_FOLDER or not root:
        return None
    return caches.folder_preview(root, int(form.image_size), form.resize, images)


def fields(form: TrainForm, errors: dict[str, str], folder: FolderPreview | None, field: Callable) -> None:
    """The folder's fields, each drawn by field(column, errors, name, widget, label, ...) as the
    form's others are, then the preview of the folder (form's values, its preview)."""
    field(st.container(), errors, "data_dir", st.text_input, "Image folder",
          placeholder="/path/to/ROOT, which holds train/<class>/<images>",
          help="the folder's path on this machine: ROOT/train/<class>/* are the training images, one folder a "
               "class (PNG, JPEG, WebP); ROOT/test/<class>/*, where it exists, the test images")
    c1, c2, c3, c4 = st.columns(4)
    field(c1, errors, "image_size", st.number_input, "Image size", min_value=MIN_IMAGE_SIZE, max_value=MAX_IMAGE_SIZE,
          step=1, help="side in pixels of the square images the network trains on; 32-96 suit these ResNets "
                       "(they pool globally), and memory grows with its square")
    field(c2, errors, "resize", st.segmented_control, "Resize", RESIZE_RULES, required=True, help=RESIZE_HELP)
    if folder is None or folder.test_counts is None:
        field(c3, errors, "test_size", st.number_input, "Test share", min_value=0.01, max_value=0.99, step=0.05,
              format="%.2f", help="the folder has no test/: this share of each class's images is held out as the "
                                  "test split, chosen by the split seed")
    field(c4, errors, "bad_images", st.segmented_control, "Bad images", BAD_IMAGES, required=True,
          help="an image that cannot be decoded (damaged, truncated, not what its name says): refuse names it and "
               "stops the run before training; skip leaves it out and counts it")
    if folder is not None and folder.error is None:
        test_size = form_number(form.test_size)
        _preview(folder, test_size if test_size is not None and 0 < test_size < 1 else TrainForm().test_size)


def _preview(folder: FolderPreview, test_size: float) -> None:
    """Counts, sizes, images and warnings of a folder its scan accepts."""
    train, test = split_counts(folder, test_size)
    with st.container(border=True, key="tf_folder_preview"):
        st.markdown(f"**{len(folder.classes):,} classes** · {sum(train):,} training images (the validation "
                    f"split included) · {sum(test):,} test images")
        st.caption(split_note(folder, test_size))
        common.table(counts_rows(folder, test_size), hide_index=True, height=min(36 + 35 * len(folder.classes), 300))
        if folder.sizes is not None:
            st.caption("Sizes: " + sizes_text(folder.sizes))
        shown = [s for s in folder.shown if s.image is not None]
        if shown:
            more = f" of the first {SHOWN_CLASSES}" if len(folder.classes) > SHOWN_CLASSES else ""
            st.caption(f"{SHOWN_PER_CLASS} images of each{more} class, {folder.image_size}x{folder.image_size} "
                       f"({folder.resize}) as the network sees them:")
            # PNG: JPEG would blur the exact pixels; a caption is markdown, a class name is not
            st.image([s.image.transpose(1, 2, 0) for s in shown], width=SHOWN_WIDTH, output_format="PNG",
                     caption=[md_escape(folder.classes[s.label]) for s in shown])
        for warning in folder_warnings(folder, test_size):
            st.warning(md_escape(warning), icon=":material/warning:")
