"""Analyze: a run's confusion matrix at any recorded epoch; click a cell to see its images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import caches, common, similar_section
from resnet_core import runs
from resnet_core.evaluation_labels import EvaluationLabels, evaluation_labels
from resnet_core.dashboard import (cell_selection, confusion_figures, downloads, gallery_cards, gallery_records,
                                   run_images)
from resnet_core.formatting import md_escape
from resnet_core.metrics import class_report, confusion_matrix, most_confused_pairs

PER_PAGE = 30
CELL_KEY = "an_cell"  # our own copy of the clicked cell: (true, pred)


def _set_cell(t: int, p: int) -> None:
    st.session_state[CELL_KEY] = (int(t), int(p))
    st.session_state["an_page"] = 1


def _on_cm_select(classes: list[str]) -> None:
    """on_select: copy the clicked cell into our own key (the chart's own selection is lost
    whenever the figure changes, e.g. to outline the selected cell)."""
    cell = cell_selection.selection_from_event(st.session_state.get("an_cm"), classes)
    if cell is not None:
        _set_cell(cell.true, cell.pred)


def _clear_cell() -> None:
    st.session_state.pop(CELL_KEY, None)


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


def _headline(cm: np.ndarray, report, split: str, epoch: int, labels: EvaluationLabels) -> None:
    total = int(cm.sum())
    wrong = total - int(np.trace(cm))
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Accuracy", f"{100 * report.accuracy:.2f}%" if math.isfinite(report.accuracy) else "—",
              help=f"{labels.split_name(split)}, epoch {epoch}"
                   + (": accumulated over the epoch's augmented batches" if split == "train" else ""))
    k2.metric("Images", f"{total:,}")
    k3.metric("Misclassified", f"{wrong:,}")
    k4.metric("Macro F1", f"{100 * report.macro_f1:.2f}%" if math.isfinite(report.macro_f1) else "—",
              help="the unweighted mean of the per-class F1 scores over every class that has examples "
                   "in this split, a never-predicted class counting as 0")


def _matrix(cm: np.ndarray, classes: list[str], mode: str, cell: cell_selection.Cell | None) -> None:
    fig = confusion_figures.confusion_figure(cm, classes, mode, selected=(cell.true, cell.pred) if cell else None)
    st.plotly_chart(fig, key="an_cm", on_select=lambda: _on_cm_select(classes), selection_mode="points",
                    config={"displayModeBar": False})
    st.caption("Rows: true class · columns: predicted class. Click a cell to see its images; "
               "click a diagonal cell for the correctly classified ones.")


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
    h2.button("Clear", key="an_clear", on_click=_clear_cell, icon=":material/close:")
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
    items = gallery_records.records(preds, positions[page.start:page.stop])
    images, origin = common.split_images(info, split, preds, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(positions):,} · {origin}")
    source = run_images.image_source(info.config, split)
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
        c3.button("Build TorchScript", key="an_dl_ts", on_click=built.add, args=((info.run_id, which),),
                  help="the model with the run's normalisation built in; input float N x 3 x 32 x 32 in "
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
        _set_cell(*pair)


# One radio, not a button per pair: the selected cell's pair shows as chosen, and eight
# buttons (each its own element, markdown label and tooltip) made Analyze load 0.08-0.21 s
# slower while a CPU run trained (paired medians, two runs of 10 loads, headless Chromium).
def _pairs(cm: np.ndarray, classes: list[str], split: str, cell: cell_selection.Cell | None) -> None:
    """The most-confused pairs; choosing one opens its cell (the selected cell's pair shows as chosen)."""
    counts = {(t, p): n for t, p, n in most_confused_pairs(cm, k=8)}
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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "— (undefined)"


def _class_table(report, classes: list[str]) -> None:
    st.markdown("**Per-class metrics**")
    table = pd.DataFrame({
        "class": classes,
        "precision": [_pct(x) for x in report.precision],
        "recall": [_pct(x) for x in report.recall],
        "F1": [_pct(x) for x in report.f1],
        "support": [int(s) for s in report.support],
    })
    common.table(table, hide_index=True, width="stretch", height=35 * (len(classes) + 1) + 3)


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
_headline(cm, report, split, epoch, labels)
st.page_link(common.EXPLAIN,
             label="Explain these errors: training dynamics, held-out flips, top losses, calibration, label errors",
             icon=":material/psychology_alt:", query_params={"run": info.run_id} if split == "train"
             else {"run": info.run_id, "split": split, "epoch": str(epoch)})
_downloads(info, split, epoch, cm, preds, classes, labels)

cell_value = st.session_state.get(CELL_KEY)
cell = cell_selection.Cell(*cell_value) if cell_value and max(cell_value) < len(classes) else None
mat_col, gal_col = st.columns([11, 10], gap="medium")
with mat_col:
    _matrix(cm, classes, mode, cell)
with gal_col:
    _gallery(info, split, preds, cm, classes, cell, available, images_from)
bottom_l, bottom_r = st.columns([2, 3], gap="large")
with bottom_l:
    _pairs(cm, classes, split, cell)
with bottom_r:
    _class_table(report, classes)
st.plotly_chart(confusion_figures.class_metrics_figure(report, classes), key="an_bars",
                config={"displayModeBar": False})
