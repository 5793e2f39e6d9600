"""Explain: why a run gets images wrong. The training images' forgetting events and data map
(explain_training.py); the held-out images' prediction flips between epoch evaluations, the
highest losses, calibration, and images whose given label may be wrong; the atlas of a
split's features (explain_atlas.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from app_pages import caches, common, explain_atlas, explain_duplicates, explain_training, similar_section
from resnet_core import runs
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import (calibration, explain_figures, gallery_cards, gallery_records, history,
                                   label_errors, run_images)
from resnet_core.formatting import md_escape

PER_PAGE = 30
FLIPS = "Held-out flips"
VIEWS = (*explain_training.VIEWS, FLIPS, "Top losses", "Calibration", "Label errors", *explain_duplicates.VIEWS,
         *explain_atlas.VIEWS)
# Views that do not take the split picked here:
OWN_SPLIT = (*explain_training.VIEWS, *explain_duplicates.VIEWS, *explain_atlas.VIEWS)
BIN_KEY = "ex_bin"  # our own copy of the clicked calibration bin


def _file_stats(run_dir: Path, split: str) -> tuple[tuple[int, tuple[int, int]], ...]:
    """(epoch, (mtime_ns, size)) of each recorded file: the cache key of what is computed from all of them."""
    epochs = runs.recorded_epochs(run_dir, split)
    return tuple(zip(epochs, caches.file_stamps(runs.prediction_path(run_dir, split, e) for e in epochs),
                     strict=True))


@st.cache_data(show_spinner="Reading every epoch's predictions…", max_entries=8)
def _every_epoch(run_dir: str, split: str, stats: tuple) -> tuple[history.HistoryResult, np.ndarray, np.ndarray]:
    """The images' history and each recorded epoch's ECE (epochs, ECEs), each file read once:
    the ECE is taken on the history's way (0.07 ms an epoch of 5,000 images); only epochs
    the history did not read (it stops at a gap) are read for it."""
    path = Path(run_dir)
    eces: dict[int, float] = {}

    def load(epoch: int) -> dict[str, np.ndarray]:
        records = runs.load_predictions(path, split, epoch)
        eces[epoch] = calibration.of_records(records).ece
        return records

    result = history.history_from_records(runs.recorded_epochs(path, split), load)
    return (result, *calibration.ece_by_epoch(path, split, known=eces))


def _pickers(all_runs: list[runs.RunInfo], left_out: dict[str, str]) -> tuple[runs.RunInfo, str, str]:
    """The run, the split of the held-out views (not of the training views) and the view,
    first the run's forgetting when it has a record of its training images."""
    wanted = common.wanted_run(all_runs, left_out)
    c_run, c_split, _ = st.columns([3, 2, 4])
    with c_run:
        info = common.pick_run(all_runs, "ex", wanted)
    # A row of its own: six views beside the run's picker were cut off at the right on a laptop's page.
    first = explain_training.FORGETTING if runs.dynamics_epochs(info.path) else FLIPS
    common.seed_from_query("ex_view", "view", list(VIEWS), first, "view")
    view = st.segmented_control("View", VIEWS, key="ex_view", required=True) or first
    common.set_query("view", view)
    available = [s for s in ("val", "test") if runs.recorded_epochs(info.path, s)]
    labels = evaluation_labels(info.config)
    with c_split:
        common.seed_from_query("ex_split", "split", available, available[0], "split")
        split = st.segmented_control("Split", available, key="ex_split", format_func=labels.split_name,
                                     required=True, disabled=view in OWN_SPLIT,
                                     help="the held-out images of the other views") or available[0]
    common.set_query("split", split)
    return info, split, view


def _cards(info: runs.RunInfo, split: str, preds: dict, positions: np.ndarray, classes: list[str],
           hist: history.History | None, key: str, notes: dict[int, str] | None = None) -> None:
    """One page of cards of these records (in this order), with each image's history strip."""
    if len(positions) == 0:
        st.caption("No images here.")
        return
    page = common.page_picker(len(positions), PER_PAGE, key, width=220)
    source = run_images.image_source(info.config, split)
    items = gallery_records.records(preds, positions[page.start:page.stop],
                                    paths=run_images.source_paths(info.path, source))
    strips = None
    if hist is not None:
        rows = hist.rows([r.index for r in items])
        strips = {r.index: row for r, row in zip(items, rows, strict=True)}
    images_from = common.image_folder(info)
    images, origin = common.split_images(info, split, preds, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(positions):,} · {origin}"
               + (" · under each image: right (green) or wrong (red) at every recorded epoch" if strips else ""))
    heatmaps, heatmap_title = (common.gradcam_toggle(info, source, items, images_from, "ex_cam") if images is not None
                               else ({}, ""))
    extras = gallery_cards.CardExtras(strips=strips, strip_epochs=hist.epochs.tolist() if hist is not None else (),
                                      notes=notes, heatmaps=heatmaps, heatmap_title=heatmap_title)
    st.html(gallery_cards.gallery_html(items, images, classes, size=96, total=len(positions), extras=extras))
    similar_section.similar_training_images(info, split, items, classes, f"{key}_similar")


def _flips_view(info, split, preds, classes, result: history.HistoryResult, epoch: int) -> None:
    if result.history is None:
        st.info(f"No per-image history for this split: {md_escape(result.problem)}", icon=":material/history:")
        return
    hist = result.history
    split_name = evaluation_labels(info.config).split_name(split)
    st.caption(f"Prediction flips between the epoch evaluations of the {split_name} images: right at one "
               "evaluation and wrong at the next. The model never trains on these images, so these are not "
               "forgetting events; those are the training images' (view “Forgetting (training)”).")
    k1, k2, k3, k4 = st.columns(4)
    k1.metric("Images", f"{len(hist.indices):,}", help=f"epochs {hist.epochs[0]}–{hist.epochs[-1]}")
    k2.metric("Never right", f"{int(hist.never_right.sum()):,}", help=history.VIEWS["never right"])
    k3.metric("Flipped at least once", f"{int((hist.flips > 0).sum()):,}",
              help="right at an evaluation and wrong at the next")
    k4.metric("Flips", f"{int(hist.flips.sum()):,}")
    st.plotly_chart(explain_figures.learned_figure(hist.learned_at, hist.epochs), key="ex_learned",
                    config={"displayModeBar": False})
    st.caption("Images learned at each epoch: right from that epoch to the last recorded one. Images wrong at "
               "the last epoch are not counted.")
    which = st.segmented_control("Show", list(history.VIEWS), key="ex_hist", default="most flipped",
                                 required=True) or "most flipped"
    st.caption(f"{which}: {history.VIEWS[which]}. Cards show epoch {epoch}'s prediction.")
    rows = history.view_rows(hist, which)
    ids = hist.indices[rows]
    notes = None
    if which == "most flipped":
        notes = {i: f"flipped {n}×" for i, n in zip(ids.tolist(), hist.flips[rows].tolist(), strict=True)}
    elif which == "learned last":
        notes = {i: f"learned at epoch {e}" for i, e in zip(ids.tolist(), hist.learned_at[rows].tolist(), strict=True)}
    _cards(info, split, preds, history.positions_of(preds, ids), classes, hist, f"ex_page_hist_{which}", notes)


def _on_bin(chart_key: str) -> None:
    b = calibration.bin_from_event(st.session_state.get(chart_key))
    if b is not None:
        st.session_state[BIN_KEY] = b
        st.session_state["ex_page_bin"] = 1


def _calibration_view(info, split, preds, classes, hist, epoch: int, epochs: np.ndarray, eces: np.ndarray) -> None:
    rel = calibration.of_records(preds)
    k1, k2, k3 = st.columns(3)
    k1.metric("ECE", f"{100 * rel.ece:.2f}%", help="expected calibration error: 15 equal-width bins of top-1 "
              "confidence, the bins' |accuracy − mean confidence| weighted by their share of images (Guo et al. 2017)")
    k2.metric("Mean confidence", f"{100 * float(gallery_records.confidences(preds).mean()):.1f}%")
    k3.metric("Accuracy", f"{100 * float((preds['preds'] == preds['labels']).mean()):.1f}%")
    selected = st.session_state.get(BIN_KEY)
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Reliability diagram**")
        st.plotly_chart(explain_figures.reliability_figure(rel, selected=selected), key="ex_rel",
                        on_select=lambda: _on_bin("ex_rel"), selection_mode="points",
                        config={"displayModeBar": False})
        st.caption("Accuracy per confidence bin (the number of images above each bar) against perfect "
                   "calibration. Click a bar to see its images.")
    with right:
        st.markdown("**Confidence of right and wrong predictions**")
        st.plotly_chart(explain_figures.confidence_histogram_figure(rel), key="ex_hist_conf",
                        on_select=lambda: _on_bin("ex_hist_conf"), selection_mode="points",
                        config={"displayModeBar": False})
        if len(epochs) > 1:
            st.markdown("**ECE over the epochs**")
            st.plotly_chart(explain_figures.ece_figure(epochs, eces, current=epoch), key="ex_ece",
                            config={"displayModeBar": False})
    names = [f"{name} · {c:,} images" for name, c in zip(calibration.bin_names(rel), rel.counts.tolist(), strict=True)]
    if selected is not None and not 0 <= selected < len(names):
        st.session_state.pop(BIN_KEY)
    st.session_state.setdefault(BIN_KEY, None)
    b = st.selectbox("Images of the confidence bin", range(len(names)), key=BIN_KEY,
                     format_func=names.__getitem__, placeholder="click a bar, or choose a bin")
    if b is not None:
        _cards(info, split, preds, calibration.bin_positions(preds, b), classes, hist, "ex_page_bin")


def _label_errors_view(info, split, preds, classes, hist) -> None:
    found = label_errors.find_label_errors(preds, len(classes))
    split_name = evaluation_labels(info.config).split_name(split)
    st.markdown(md_escape(label_errors.headline(found, len(preds["labels"]), split_name)))
    st.caption("Candidates for a person to check, not verdicts: a confident model can be confidently wrong. "
               "Confident learning (Northcutt et al. 2021), on out-of-sample probabilities as it needs: a "
               "candidate's top-1 prediction is another class (the suggested one), its p(given label) is below the "
               "mean of its class, and the suggested class's probability at least the mean of that class. The "
               "records hold the top-5 probabilities only: a given label outside them has a probability below the "
               "5th (shown as ≤), and the thresholds are checked on the side that flags fewer images. The most "
               "likely label errors come first; 'true' on a card is the dataset's given label. Thresholds follow "
               "the model: an early epoch or a weak model is confident of little, so most of its candidates are its "
               "own mistakes; a trained run's last epochs say more.")
    notes = {int(preds["indices"][p]): label_errors.describe(found, int(p), classes) for p in found.positions}
    _cards(info, split, preds, found.positions, classes, hist, "ex_page_le", notes)


st.title("Explain")
all_runs, left_out = common.runs_with_epochs(("val", "test"))  # the splits with per-image records
if not all_runs:
    st.info("No run has recorded per-image predictions yet: they appear here after the first epoch of a run.",
            icon=":material/info:")
    st.page_link(common.TRAIN, label="Launch a run", icon=":material/rocket_launch:")
    st.stop()

info, split, view = _pickers(all_runs, left_out)
if view in explain_training.VIEWS:
    dynamics = explain_training.load(info)
    if dynamics is not None:
        (explain_training.forgetting_view if view == explain_training.FORGETTING
         else explain_training.data_map_view)(info, dynamics)
    st.stop()
if view in explain_duplicates.VIEWS:
    explain_duplicates.view(info)
    st.stop()
if view in explain_atlas.VIEWS:
    explain_atlas.atlas_view(info)
    st.stop()
labels = evaluation_labels(info.config)
epoch = common.pick_epoch(info, split, "ex", in_url=True)
try:
    preds = caches.predictions(info.path, split, epoch)
except runs.RunFolderError as e:
    st.error(f"Epoch {epoch} of the {labels.split_name(split)} split cannot be shown: {md_escape(e)}",
             icon=":material/broken_image:")
    st.stop()
classes = info.classes or [str(i) for i in range(int(preds["topk_classes"].max()) + 1)]
hist_result, ece_epochs, eces = _every_epoch(str(info.path), split, _file_stats(info.path, split))
hist = hist_result.history
if view == FLIPS:
    _flips_view(info, split, preds, classes, hist_result, epoch)
elif view == "Top losses":
    st.caption(f"Every image of epoch {epoch}, the highest loss (−log p(true class)) first.")
    _cards(info, split, preds, gallery_records.loss_positions(preds), classes, hist, "ex_page_loss")
elif view == "Calibration":
    _calibration_view(info, split, preds, classes, hist, epoch, ece_epochs, eces)
else:
    _label_errors_view(info, split, preds, classes, hist)
if hist is None and view != FLIPS:
    st.caption(f"No history strips on the cards: {md_escape(hist_result.problem)}")
