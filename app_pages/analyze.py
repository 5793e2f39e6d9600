"""Analyze: a run's confusion matrix at any recorded epoch; click a cell to see its images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import analyze_matrix, caches, common, similar_section
from resnet_core import runs
from resnet_core.config import image_format
from resnet_core.evaluation_labels import EvaluationLabels, evaluation_labels
from resnet_core.dashboard import (cell_selection, confusion_figures, downloads, gallery_cards, gallery_records,
                                   run_images)
from resnet_core.formatting import md_escape
from resnet_core.metrics import class_report, coarse_confusion, confusion_matrix, most_confused_pairs, topk_accuracy

PER_PAGE = 30
CELL_KEY = analyze_matrix.CELL_KEY


def _pickers(all_runs: list[runs.RunInfo], left_out: dict[str, str]) -> tuple[runs.RunInfo, list[str], str, str]:
    """Run (the one in the URL, else the newest), split and normalisation: the run, its
    recorded splits, the split and the normalisation chosen."""
    wanted = common.wanted_run(all_runs, left_out)
    c_run, c_split, c_norm = st.columns([3, 2, 3])
    with c_run:
        info = common.pick_run(all_runs, "an", wanted)
    available = [s for s in runs.SPLITS if runs.recorded_epochs(info.path, s)]
    labels = evaluation_labels(info.config)
    with c_split:
        # Open on a split with per-image records (a run without validation has only test ones).
        split = st.segmented_control("Split", available, key="an_split", format_func=labels.split_name, required=True,
                                     default=next(s for s in ("val", "test", "train") if s in available))
        split = split if split in available else available[0]
    with c_norm:
        mode = st.segmented_control("Normalisation", list(confusion_figures.NORMALISATIONS), key="an_norm",
                                    required=True, default="counts",
                                    format_func={"counts": "counts", "recall": "rows = recall",
                                                 "precision": "columns = precision"}.get)
    return info, available, split, mode or "counts"


def _load(info: runs.RunInfo, split: str, epoch: int, n_classes: int,
          labels: EvaluationLabels) -> tuple[np.ndarray, dict | None]:
    """The confusion matrix of a split at an epoch, and its per-image records (None for the
    training split, which records only its matrix); stops the page if they cannot be read."""
    try:
        if split == "train":
            return np.asarray(caches.predictions(info.path, "train", epoch)["confusion"], dtype=np.int64), None
        preds = caches.predictions(info.path, split, epoch)
        n_classes = n_classes or int(preds["topk_classes"].max()) + 1
        return confusion_matrix(preds["labels"], preds["preds"], n_classes), preds
    except runs.RunFolderError as e:
        st.error(f"Epoch {epoch} of the {labels.split_name(split)} split cannot be shown: {md_escape(e)}",
                 icon=":material/broken_image:")
        st.stop()


def _topk(preds: dict | None, n_classes: int, split: str, epoch: int, labels: EvaluationLabels) -> tuple[str, str, str]:
    """The top-5 accuracy's label, value and help; "—" where there are 5 classes or fewer, as
    every class is then among the 5 most probable (it read "Top-4 accuracy 100%" on a
    4-class image folder)."""
    k = 5
    if n_classes <= k:
        return (f"Top-{k} accuracy", "—", f"with {n_classes} classes every class is among the {k} most probable, "
                "so top-5 accuracy would be 100% whatever the model")
    if preds is None:
        return (f"Top-{k} accuracy", "—", "the training split records only its confusion matrix, not each "
                "image's most probable classes")
    k = min(k, preds["topk_classes"].shape[1])
    value = topk_accuracy(preds["labels"], preds["topk_classes"], k)
    return (f"Top-{k} accuracy", f"{100 * value:.2f}%" if math.isfinite(value) else "—",
            f"top-{k} accuracy, {labels.split_name(split)} split, epoch {epoch}: the share of images whose "
            f"true class is among the model's {k} most probable")


def _headline(cm: np.ndarray, report, preds: dict | None, split: str, epoch: int, labels: EvaluationLabels) -> None:
    total = int(cm.sum())
    wrong = total - int(np.trace(cm))
    k1, k_top, k2, k3, k4 = st.columns(5)
    k1.metric("Accuracy", f"{100 * report.accuracy:.2f}%" if math.isfinite(report.accuracy) else "—",
              help=f"top-1 accuracy, {labels.split_name(split)} split, epoch {epoch}"
                   + (": accumulated over the epoch's augmented batches" if split == "train" else ""))
    top_label, top_value, top_help = _topk(preds, cm.shape[0], split, epoch, labels)
    k_top.metric(top_label, top_value, help=top_help)
    k2.metric("Images", f"{total:,}")
    k3.metric("Misclassified", f"{wrong:,}")
    k4.metric("Macro F1", f"{100 * report.macro_f1:.2f}%" if math.isfinite(report.macro_f1) else "—",
              help="the unweighted mean of the per-class F1 scores over every class that has examples "
                   "in this split, a never-predicted class counting as 0")


def _gallery(info: runs.RunInfo, split: str, preds: dict | None, cm: np.ndarray, classes: list[str],
             cell: cell_selection.Cell | None, available: list[str], images_from: run_images.ImageFolder) -> None:
    """The images of the selected cell, or why there are none."""
    if cell is None:
        st.markdown("**Gallery**")
        st.info("Click a cell of the matrix (or a pair below) to see its images.", icon=":material/touch_app:")
        return
    n_cell = int(cm[cell.true, cell.pred])
    kind = "correct" if cell.correct else "misclassified"
    h1, h2 = st.columns([5, 1], vertical_alignment="center")
    h1.markdown(f"**true {md_escape(classes[cell.true])} → predicted {md_escape(classes[cell.pred])}** · "
                f"{n_cell:,} {kind} image{'s' if n_cell != 1 else ''}")
    h2.button("Clear", key="an_clear", on_click=analyze_matrix.clear_cell, icon=":material/close:")
    labels = evaluation_labels(info.config)
    if split == "train" or preds is None:
        with_images = " or ".join(labels.split_name(s) for s in available if s != "train") or "another"
        st.info("The training split records only its confusion matrix (accumulated over the epoch's "
                "augmented batches), not per-image predictions, so its cells have no gallery. "
                f"Switch to the {with_images} split to see images.", icon=":material/info:")
    elif n_cell == 0:
        st.caption("No images in this cell.")
    else:
        _cell_images(info, split, preds, classes, cell, images_from)


def _cell_images(info: runs.RunInfo, split: str, preds: dict, classes: list[str], cell: cell_selection.Cell,
                 images_from: run_images.ImageFolder) -> None:
    """One page of a cell's images, sorted as asked, with their top predictions."""
    o1, o2, o3 = st.columns([3, 3, 2], vertical_alignment="bottom")
    sort = o1.segmented_control("Sort by", list(gallery_records.SORTS), key="an_sort", default="confidence",
                                required=True)
    order = o2.segmented_control("Order", ["highest first", "lowest first"], key="an_order",
                                 default="highest first", required=True)
    positions = gallery_records.cell_positions(preds, cell, sort or "confidence", order != "lowest first")
    page = common.page_picker(len(positions), PER_PAGE, "an_page", lambda: o3)
    source = run_images.image_source(info.config, split)
    items = gallery_records.records(preds, positions[page.start:page.stop],
                                    paths=run_images.source_paths(info.path, source))
    images, origin = common.split_images(info, split, preds, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(positions):,} · {origin}")
    heatmaps, heatmap_title = (common.gradcam_toggle(info, source, items, images_from, "an_cam") if images is not None
                               else ({}, ""))
    extras = gallery_cards.CardExtras(heatmaps=heatmaps, heatmap_title=heatmap_title)
    st.html(gallery_cards.gallery_html(items, images, classes, size=96, cell=cell, total=len(positions),
                                       extras=extras))
    similar_section.similar_training_images(info, split, items, classes, "an_similar")



def _downloads(info: runs.RunInfo, split: str, epoch: int, cm: np.ndarray, preds: dict | None, classes: list[str],
               labels: EvaluationLabels) -> None:
    """The shown epoch's matrix and predictions, the checkpoints and the TorchScript model,
    as files, in a section drawn only while open."""
    common.lazy_expander("Downloads", "an_dl_open", lambda: _download_buttons(info, split, epoch, cm, preds, classes,
                                                                               labels), icon=":material/download:")


def _download_buttons(info: runs.RunInfo, split: str, epoch: int, cm: np.ndarray, preds: dict | None,
                      classes: list[str], labels: EvaluationLabels) -> None:
    name = f"{info.run_id}-{split}-epoch{epoch:03d}"
    title = f"{info.run_id} · {labels.split_name(split)} · epoch {epoch}"
    c1, c2, c3 = st.columns(3)
    c1.download_button("Confusion matrix (CSV)", lambda: downloads.confusion_csv(cm, classes),
                       file_name=f"{name}-confusion.csv", mime="text/csv", key="an_dl_cm_csv", on_click="ignore")
    c1.download_button("Confusion matrix (PNG)", lambda: downloads.confusion_png(cm, classes, title=title),
                       file_name=f"{name}-confusion.png", mime="image/png", key="an_dl_cm_png", on_click="ignore")
    if preds is None:
        c2.caption("The training split records no per-image predictions.")
    else:
        c2.download_button("Predictions (CSV)", lambda: downloads.predictions_csv(preds, classes),
                           file_name=f"{name}-predictions.csv", mime="text/csv", key="an_dl_preds",
                           on_click="ignore", help="index, label, pred, confidence, loss and the top-k")
    files = info.checkpoints
    if not files:
        c3.caption("No checkpoint yet.")
        return
    which = c3.segmented_control("Checkpoint", list(files), key="an_dl_which", default=next(iter(files)),
                                 required=True)
    which = which if which in files else next(iter(files))  # none yet, or a file gone since
    def checkpoint_bytes() -> bytes:
        with runs.open_run_file(info.path, files[which]) as f:
            return f.read()

    c3.download_button(f"{files[which]}", checkpoint_bytes,
                       file_name=f"{info.run_id}-{files[which]}", mime="application/octet-stream",
                       key="an_dl_ckpt", on_click="ignore", help="torch.load(path, weights_only=True)")
    built = st.session_state.setdefault("an_dl_built", set())  # (run, checkpoint) asked for this session
    if (info.run_id, which) not in built:
        # A callback, so that the rerun it causes draws the download in the button's place.
        size, _ = image_format(info.resolved, info.train_config)
        c3.button("Build TorchScript", key="an_dl_ts", on_click=built.add, args=((info.run_id, which),),
                  help=f"the model with the run's normalisation built in; input float N x 3 x {size} x {size} in "
                       "[0, 1] or uint8; see resnet_core/export.py")
        return
    from resnet_core.export import ExportRefused
    from resnet_core.run_model import ModelLoadError

    try:
        data = caches.torchscript_bytes(info.path, which)
    except (ModelLoadError, ExportRefused) as e:
        c3.warning(f"No TorchScript: {md_escape(e)}", icon=":material/error:")
        return
    c3.download_button("TorchScript model", data, file_name=f"{info.run_id}-{which}.torchscript.pt",
                       mime="application/octet-stream", key="an_dl_ts_file", on_click="ignore")


PAIRS_KEY = "an_pairs"


def _on_pair() -> None:
    pair = st.session_state.get(PAIRS_KEY)
    if isinstance(pair, tuple) and len(pair) == 2:  # not a label gone stale meanwhile (the counts changed)
        analyze_matrix.set_cell(*pair)


# One radio, not a button per pair: the selected cell's pair shows as chosen, and eight
# buttons (each its own element, markdown label and tooltip) made Analyze load 0.08-0.21 s
# slower while a CPU run trained (paired medians, two runs of 10 loads, headless Chromium).
def _pairs(cm: np.ndarray, classes: list[str], split: str, cell: cell_selection.Cell | None) -> None:
    """The most-confused pairs; choosing one opens its cell (the selected cell's pair shows as chosen)."""
    counts = {(t, p): n for t, p, n in most_confused_pairs(cm, k=8 if len(classes) <= 10 else 15)}
    if not counts:
        st.markdown("**Most-confused pairs**")
        st.caption("No mistakes at this epoch.")
        return
    current = (cell.true, cell.pred) if cell else None
    st.session_state[PAIRS_KEY] = current if current in counts else None

    def label(pair: tuple[int, int]) -> str:
        t, p = pair
        share = f" ({100 * counts[pair] / cm[t].sum():.1f}% of {md_escape(classes[t])})" if cm[t].sum() else ""
        return f"{md_escape(classes[t])} → {md_escape(classes[p])} · {counts[pair]:,}{share}"

    st.radio("**Most-confused pairs**", list(counts), index=None, key=PAIRS_KEY, format_func=label,
             on_change=_on_pair, help="choose one to open its cell's images" if split != "train"
             else "choose one to select its cell")


def _class_table(report, classes: list[str], info: runs.RunInfo) -> None:
    """Per-class metrics as numbers (so that a click on a column header sorts them), with each
    class's superclass where the run has them; an undefined value is an empty cell."""
    st.markdown("**Per-class metrics**")
    grouped = len(info.superclass_of) == len(classes)
    table = pd.DataFrame({
        "class": classes,
        **({"superclass": [info.superclasses[s] for s in info.superclass_of]} if grouped else {}),
        "precision": 100 * report.precision, "recall": 100 * report.recall, "F1": 100 * report.f1,
        "support": [int(s) for s in report.support],
    })
    percent = {name: st.column_config.NumberColumn(name, format="%.1f%%", help=why) for name, why in (
        ("precision", "empty where the class was never predicted"), ("recall", "empty where it has no images"),
        ("F1", "empty where it has neither images nor predictions"))}
    common.table(table, hide_index=True, width="stretch", column_config=percent,
                 height=35 * (min(len(classes), 20) + 1) + 3)


def _class_bars(report, cm: np.ndarray, classes: list[str], info: runs.RunInfo) -> None:
    """Precision, recall and F1 per class, or per superclass where the run has them (bars of
    100 classes are too thin to read; the table above sorts them)."""
    if len(info.superclass_of) == len(classes):
        coarse = class_report(coarse_confusion(cm, info.superclass_of, len(info.superclasses)))
        fig = confusion_figures.class_metrics_figure(coarse, info.superclasses,
                                                     title="Per-superclass precision, recall and F1")
    else:
        fig = confusion_figures.class_metrics_figure(report, classes)
    st.plotly_chart(fig, key="an_bars", config={"displayModeBar": False})


st.title("Analyze")
all_runs, left_out = common.runs_with_epochs()
if not all_runs:
    st.info("No run has finished an epoch yet: the confusion matrices appear here after the first "
            "epoch of a run.", icon=":material/info:")
    st.page_link(common.TRAIN, label="Launch a run", icon=":material/rocket_launch:")
    st.stop()

info, available, split, mode = _pickers(all_runs, left_out)
images_from = common.image_folder(info)
labels = evaluation_labels(info.config)
epoch = common.pick_epoch(info, split, "an")
classes = info.classes
cm, preds = _load(info, split, epoch, len(classes), labels)
classes = classes or [str(i) for i in range(cm.shape[0])]
report = class_report(cm)
_headline(cm, report, preds, split, epoch, labels)
st.page_link(common.EXPLAIN,
             label="Explain these errors: training dynamics, held-out flips, top losses, calibration, label errors",
             icon=":material/psychology_alt:", query_params={"run": info.run_id} if split == "train"
             else {"run": info.run_id, "split": split, "epoch": str(epoch)})
_downloads(info, split, epoch, cm, preds, classes, labels)

cell_value = st.session_state.get(CELL_KEY)
cell = cell_selection.Cell(*cell_value) if cell_value and max(cell_value) < len(classes) else None
view = analyze_matrix.view_picker(info, classes)
if view == "classes":  # 100 classes a side: the page's width, so that a cell is big enough to click
    analyze_matrix.matrix(view, info, cm, classes, mode, cell)
    _gallery(info, split, preds, cm, classes, cell, available, images_from)
else:
    mat_col, gal_col = st.columns([11, 10], gap="medium")
    with mat_col:
        analyze_matrix.matrix(view, info, cm, classes, mode, cell)
    with gal_col:
        _gallery(info, split, preds, cm, classes, cell, available, images_from)
bottom_l, bottom_r = st.columns([2, 3], gap="large")
with bottom_l:
    _pairs(cm, classes, split, cell)
with bottom_r:
    _class_table(report, classes, info)
_class_bars(report, cm, classes, info)
