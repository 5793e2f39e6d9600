"""The Train page's model summary: parameters, MACs and the paper's error of the model the
form describes, and the trainer's own plan for the form. Functions only: app_pages/train_form.py
calls :func:`render`."""

from __future__ import annotations

import streamlit as st

from resnet_core import cifar, formatting
from resnet_core.config import CIFAR10_TRAIN_IMAGES, make_plan
from resnet_core.dashboard.folder_preview import FolderPreview
from resnet_core.dashboard.form import TrainForm, folder_train_size, form_config, recipe_summary
from resnet_core.models import describe_model
from resnet_core.runs import PLAIN


def _data_size(values: TrainForm, folder: FolderPreview | None) -> tuple[int, int] | None:
    """(classes, training set images) the form trains on; None for an image folder not yet readable."""
    if values.dataset in cifar.SPECS:
        return cifar.SPECS[values.dataset].num_classes, CIFAR10_TRAIN_IMAGES
    if values.dataset != cifar.IMAGE_FOLDER or folder is None or folder.error is not None:
        return None
    return len(folder.classes), folder_train_size(values, folder)


def render(values: TrainForm, errors: dict[str, str], folder: FolderPreview | None) -> None:
    """Parameters, MACs and the paper's error of the model the form describes (on the image
    folder's classes and image size for a folder), and the trainer's own plan for this form
    (epochs, steps, schedule)."""
    with st.container(border=True):
        st.markdown("**Model summary**")
        data = _data_size(values, folder)
        if "depth" in errors or "block" in errors or "shortcut" in errors:
            st.caption("Pick a valid depth to see the model.")
        elif data is None:
            st.caption("Choose a readable image folder to see the model: its classes make the last layer.")
        else:
            _model(values, form_config(values, data[1]).image_size, data[0])
        if data is not None and not set(errors) - {"data", "device"}:  # the trainer's own resolution of this form
            cfg = form_config(values, data[1])
            st.caption(f"{make_plan(cfg, data[1]).describe()}  \n"
                       f"{formatting.md_escape(recipe_summary(cfg))}")


def _model(values: TrainForm, image_size: int, num_classes: int) -> None:
    with st.spinner("counting…"):
        summary = describe_model(int(values.depth), values.block, values.shortcut, num_classes, bool(values.preact),
                                 values.dataset, image_size)
    st.markdown(f"### {summary.name}")
    st.caption(f"{values.block} blocks · " + ("no shortcuts (plain network)" if values.shortcut == PLAIN
                                              else f"shortcut option {values.shortcut}"))
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", formatting.format_count(summary.params), help=f"{summary.params:,}")
    m2.metric("MACs / image", formatting.format_count(summary.macs),
              help=f"{summary.macs:,} multiply-accumulates on a {image_size}x{image_size} image")
    if summary.paper_error is not None:
        dataset = cifar.dataset_title(summary.dataset)
        m3.metric("Paper error", f"{summary.paper_error:.2f}%", help=f"{dataset} test error, {summary.paper_source}")
        st.caption(f"Paper: {dataset} test error {summary.paper_text}, {summary.paper_source}.")
    else:
        m3.metric("Paper error", "—", help=summary.paper_text)
        st.caption(f"Paper error: {summary.paper_text}.")
