"""Explain's views of the training images, from the record the training steps left of every
image at every epoch (dynamics/, see resnet_core.runs.folder_format): forgetting events
(Toneva et al. 2019) and the data map (Swayamdipta et al. 2020), on which a box or a
freeform area drawn opens the images inside."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import caches, common
from app_pages.area_select_chart import area_select_chart
from resnet_core import runs
from resnet_core.data_maps import REGIONS
from resnet_core.dashboard import data_map_selection, dynamics_figures, gallery_cards, run_images, training_gallery
from resnet_core.dynamics import COUNTED, Dynamics, summary
from resnet_core.formatting import md_escape

FORGETTING, DATA_MAP = "Forgetting (training)", "Data map (training)"
VIEWS = (FORGETTING, DATA_MAP)
PER_PAGE = 30
AREAS_KEY = "ex_map_areas"  # our own copy of the drawn selection: (run id, areas)
NO_RECORD = ("This run has no record of its training images (runs trained before it was recorded, or ended "
             "before their first epoch): its training dynamics cannot be shown.")


def load(info: runs.RunInfo) -> Dynamics | None:
    """The run's dynamics, or None with one line that says why there are none."""
    if not runs.dynamics_epochs(info.path):
        st.info(NO_RECORD, icon=":material/history_toggle_off:")
        return None
    try:
        return caches.dynamics(info.path)
    except runs.RunFolderError as e:
        st.error(f"The record of the training images cannot be read: {md_escape(e)}", icon=":material/broken_image:")
        return None


def _counted(d: Dynamics) -> None:
    n, e = len(d.record.indices), len(d.record.epochs)
    # Without it the counts and regions summed to fewer than the images named (a 2,000-image
    # subset over 3 epochs of 15 full batches: 431 + 562 + 1,006 of 2,000, one never presented).
    unseen = int((~d.forgetting.presented).sum())
    never = (f" {unseen:,} of them no epoch presented (a dropped last partial batch, or a max-steps run's untaken "
             "steps): they are in no count, no bar and no region.") if unseen else ""
    over = f"epochs 1–{e}" if e > 1 else "epoch 1"
    st.caption(f"{n:,} training images over {over}.{never} Counted: {COUNTED}. Validation and test images "
               "are never part of it (their prediction flips are the view “Held-out flips”).")


def _gallery(info: runs.RunInfo, d: Dynamics, rows: np.ndarray, key: str, notes: dict[int, str] | None = None) -> None:
    """One page of cards of these rows of the record (in this order), from the training set."""
    if len(rows) == 0:
        st.caption("No images here.")
        return
    page = common.page_picker(len(rows), PER_PAGE, key, width=220)
    images, origin = common.source_images(
        "train", {"indices": d.record.indices, "labels": d.record.original_labels}, common.image_folder(info))
    st.caption(f"Showing {page.start + 1}–{page.stop} of {len(rows):,} · {origin} · under each image: right "
               "(green) or wrong (red) at each epoch that presented it")
    classes = info.classes  # load_dynamics checked the record's labels against them
    shown = training_gallery.cards(d, rows[page.start:page.stop], notes, run_images.source_paths(info.path, "train"))
    st.html(gallery_cards.training_gallery_html(shown, images, classes, size=96, total=len(rows)))


def forgetting_view(info: runs.RunInfo, d: Dynamics) -> None:
    s, f = summary(d), d.forgetting
    k1, k2, k3, k4, k5 = st.columns(5)
    k1.metric("Forgetting events", f"{s['forgetting']['events_total']:,}",
              help="right at a presentation and wrong at the next presentation of the same image")
    k2.metric("Forgotten at least once", f"{s['forgetting']['forgotten_at_least_once']:,}")
    k3.metric("Unforgettable", f"{s['forgetting']['unforgettable']:,}",
              help="right at some presentation and never forgotten after it")
    k4.metric("Never learned", f"{s['forgetting']['never_learned']:,}",
              help="wrong at every presentation: Toneva et al. count them as forgotten infinitely often; shown "
                   "apart here, with no events in the total")
    k5.metric("Labels flipped", f"{s['noise']['flipped']:,}" if "noise" in s else "none",
              help="training labels changed to another class before training (--label-noise)")
    _counted(d)
    flipped = d.record.flipped if "noise" in s else None
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Forgetting events per image**")
        shown = f.presented  # an image no epoch presented is in no bar
        st.plotly_chart(dynamics_figures.forgetting_counts_figure(
                            f.events[shown], f.never_learned[shown], None if flipped is None else flipped[shown]),
                        key="ex_forget_counts", config={"displayModeBar": False})
    with right:
        st.markdown("**Epoch each image was first right**")
        st.plotly_chart(dynamics_figures.first_learned_figure(f.first_learned, d.record.epochs),
                        key="ex_first_learned", config={"displayModeBar": False})
    which = st.segmented_control("Show", list(training_gallery.VIEWS), key="ex_train_gallery",
                                 default="most forgotten", required=True) or "most forgotten"
    rows = training_gallery.view_rows(d, which)
    share = training_gallery.flipped_share(d, rows)
    st.caption(f"{which}: {training_gallery.VIEWS[which]}." + (f" Flipped labels: {share}." if share else ""))
    _gallery(info, d, rows, f"ex_page_train_{which}")


def _on_map_select(run_id: str) -> None:
    """on_select: keep the area drawn, which the chart draws again at each rerun; a shape too
    small to select anything (a freeform path of fewer than three corners) leaves the kept
    one as it is (Clear removes it)."""
    areas = data_map_selection.selection_areas(st.session_state.get("ex_map"))
    if areas:
        st.session_state[AREAS_KEY] = (run_id, areas)
        st.session_state["ex_page_map"] = 1


def _selection_text(chosen: data_map_selection.Selected) -> str:
    counts = " · ".join(f"{name} {n:,}" for name, n in chosen.region_counts.items())
    text = f"**{len(chosen.positions):,} images selected**: {counts}"
    if chosen.flipped is not None:
        by_region = ", ".join(f"{n:,} {name}" for name, n in (chosen.flipped_by_region or {}).items())
        share = chosen.flipped / len(chosen.positions) if len(chosen.positions) else 0.0
        text += f" · **{chosen.flipped:,} flipped** ({share:.1%}; {by_region})"
    return text


def data_map_view(info: runs.RunInfo, d: Dynamics) -> None:
    s, m = summary(d), d.data_map
    counts = dict(zip(REGIONS, (s["regions"]["easy"], s["regions"]["ambiguous"], s["regions"]["hard"]), strict=True))
    flipped = d.record.flipped if "noise" in s else None
    kept = st.session_state.get(AREAS_KEY)
    kept = kept[1] if kept and kept[0] == info.run_id else ()
    area_select_chart(dynamics_figures.data_map_figure(m.variability, m.confidence, m.correctness, d.record.indices,
                                                       m.variability_cut, m.confidence_cut, flipped, counts),
                      key="ex_map", on_select=lambda: _on_map_select(info.run_id), areas=kept)
    st.caption(f"Each training image at the mean (confidence) and standard deviation (variability) of the "
               f"probability the model gave its training label over the epochs that presented it, coloured by the "
               f"fraction of those it was right at. Regions: ambiguous, the third of the images with the highest "
               f"variability "
               f"(right of {m.variability_cut:.3f}); of the rest, hard-to-learn below a confidence of "
               f"{m.confidence_cut:.3f} (the lowest third of all images), easy-to-learn above."
               + (" Red crosses: labels flipped before training." if flipped is not None else "")
               + " Drag a box over the map to see the images inside (the mode bar's pen draws a freeform area "
                 "instead); a new one replaces it, and Clear removes it.")
    _counted(d)
    if not kept:
        st.info("Draw a box (or a freeform area) on the map to see the images inside it here.",
                icon=":material/touch_app:")
        return
    chosen = data_map_selection.selected_images(kept, m.variability, m.confidence, m.region, REGIONS, flipped)
    h1, h2 = st.columns([6, 1], vertical_alignment="center")
    h1.markdown(_selection_text(chosen))
    h2.button("Clear", key="ex_map_clear", on_click=st.session_state.pop, args=(AREAS_KEY, None),
              icon=":material/close:")
    st.caption("The least confident first.")
    _gallery(info, d, chosen.positions, "ex_page_map")
