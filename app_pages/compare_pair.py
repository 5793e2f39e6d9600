"""Compare's two runs image by image: runs A and B, the split and the epoch (in the URL), their
predictions paired image by image (Pair), the difference of their confusion matrices (click a
cell for the images that moved into or out of it; a 100-class difference superclass by
superclass, as Analyze's matrix) and the images one gets right and the other wrong."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import caches, common
from resnet_core import runs
from resnet_core.evaluation_labels import evaluation_labels
from resnet_core.dashboard import (cell_selection, comparison, confusion_figures, gallery_cards, gallery_records,
                                   run_images)
from resnet_core.formatting import format_pct, md_escape

PER_PAGE = 30
CELL_KEY = "cmp_cell"  # our own copy of the clicked difference cell: (true, pred)
SPLITS = {"val": "validation", "test": "test"}
# Past this many classes the difference matrix takes the page's width and WIDE_MATRIX_HEIGHT,
# its images below it: beside the gallery, 100 classes (CIFAR-100's) left a cell 4 px.
WIDE_MATRIX_FROM = 20
WIDE_MATRIX_HEIGHT = 900


def run_name(info: runs.RunInfo) -> str:
    """A run as Compare's curves and captions name it: model (and dataset, see
    common.model_text) and title (the name a user gave it and its id, else the id)."""
    model = common.model_text(info)
    return f"{model} · {info.title}" if model else info.title


@dataclass(frozen=True)
class Pair:
    """Two runs' records of the same images, ready to compare."""

    a: runs.RunInfo
    b: runs.RunInfo
    a_preds: dict
    b_preds: dict
    paired: comparison.Paired
    classes: list[str]
    split: str
    superclass_of: list[int]  # each class's superclass where both runs group them alike, else []
    superclasses: list[str]

    @property
    def group(self) -> list[str]:
        """Each class's superclass name ([] without superclasses)."""
        return [self.superclasses[s] for s in self.superclass_of]


def _evaluation_pickers(chosen: list[runs.RunInfo]) -> tuple[runs.RunInfo, runs.RunInfo, str, str]:
    """Runs A and B among those chosen, the split and the epoch choice (kept in the URL as
    ?a=...&b=...&split=...&epoch=...)."""
    by_id = {r.run_id: r for r in chosen}
    ids = list(by_id)
    c_a, c_b, c_split, c_epoch = st.columns([3, 3, 2, 3])
    # A run standing in for one the link names is never the other side's: a run compared with
    # itself shows no differences, as if there were none.
    common.seed_from_query("cmp_a", "a", ids, next(i for i in ids if i != st.query_params.get("b")), "run A")
    a = c_a.selectbox("Run A", ids, key="cmp_a", format_func=lambda i: common.run_title(by_id[i]))
    common.seed_from_query("cmp_b", "b", ids, next(i for i in ids if i != a), "run B")
    b = c_b.selectbox("Run B", ids, key="cmp_b", format_func=lambda i: common.run_title(by_id[i]))
    common.seed_from_query("cmp_split", "split", list(SPLITS), "test", "split")
    split = c_split.segmented_control("Split", list(SPLITS), key="cmp_split", required=True,
                                      format_func=SPLITS.get) or "test"
    both = sorted(set(runs.recorded_epochs(by_id[a].path, split)) & set(runs.recorded_epochs(by_id[b].path, split)))
    choices = [comparison.FINAL, comparison.BEST] + [str(e) for e in both]
    names = {comparison.FINAL: "final (each run's last)", comparison.BEST: "best validation epoch (each run's)"}
    common.seed_from_query("cmp_epoch", "epoch", choices, comparison.FINAL, "epoch")
    epoch = c_epoch.selectbox("Epoch", choices, key="cmp_epoch",
                              format_func=lambda c: names.get(c, f"epoch {c} (recorded by both)"))
    for param, value in (("a", a), ("b", b), ("split", split), ("epoch", epoch)):
        common.set_query(param, value)
    return by_id[a], by_id[b], split, epoch


def _load_pair(chosen: list[runs.RunInfo]) -> Pair | None:
    """The pickers, then A's and B's records; None (with the reason shown) when they cannot
    be compared."""
    if len(chosen) < 2:
        st.info("Pick two or more runs above to compare two of them image by image.", icon=":material/touch_app:")
        return None
    a, b, split, choice = _evaluation_pickers(chosen)
    loaded, texts = [], []
    for tag, info in (("A", a), ("B", b)):
        split_name = evaluation_labels(info.config).split_name(split)
        pick = comparison.pick_epoch(runs.recorded_epochs(info.path, split), choice, split_name,
                                     comparison.best_epoch(info))
        if pick.problem:
            st.warning(f"{tag} ({md_escape(run_name(info))}) {md_escape(pick.problem)}.", icon=":material/block:")
            return None
        try:
            preds = caches.predictions(info.path, split, pick.epoch)
        except runs.RunFolderError as e:
            st.error(f"{tag} ({md_escape(run_name(info))}): {md_escape(e)}", icon=":material/broken_image:")
            return None
        loaded.append(comparison.evaluated(tag, info, split, preds))
        texts.append(f"**{tag}** = {md_escape(run_name(info))}: {md_escape(pick.text)}")
    problem = comparison.comparability_problem(*loaded)
    if problem:
        st.error(md_escape(problem), icon=":material/compare_arrows:")
        return None
    paired = comparison.pair(loaded[0].preds, loaded[1].preds)
    st.caption(" · ".join(texts) + f" · {len(paired):,} images evaluated by both")
    # load_predictions checked the records against config.json's classes: there are some.
    classes = list(loaded[0].classes)
    return Pair(a, b, loaded[0].preds, loaded[1].preds, paired, classes, split,
                *comparison.shared_superclasses(a, b, len(classes)))


def _compared_gallery(pair: Pair, positions: np.ndarray, kind: str, title: str, by: str, key: str) -> None:
    """One page of images (positions into pair.paired), most confident first by run `by`
    ("a" or "b"), with both runs' predictions."""
    st.markdown(f"**{title}** · {len(positions):,} image{'s' if len(positions) != 1 else ''}")
    if not len(positions):
        st.caption("None.")
        return
    ordered = comparison.most_confident_first(pair.paired, positions, pair.a_preds if by == "a" else pair.b_preds, by)
    page = common.page_picker(len(ordered), PER_PAGE, key, width=220)
    shown = ordered[page.start:page.stop]
    paths = run_images.source_paths(pair.a.path, run_images.image_source(pair.a.config, pair.split))  # A's images
    items = list(zip(gallery_records.records(pair.a_preds, pair.paired.a_pos[shown], paths=paths),
                     gallery_records.records(pair.b_preds, pair.paired.b_pos[shown]), strict=True))
    images_from = run_images.image_folder(pair.a.config, common.data_dir(), pair.a.dataset, common.runs_dir(),
                                          pair.a.path)
    images, origin = common.split_images(pair.a, pair.split, pair.a_preds, images_from)
    st.caption(f"Showing {page.start + 1}–{page.stop}, most confident {by.upper()} first · {origin}")
    st.html(gallery_cards.compared_gallery_html(items, images, pair.classes, size=80,
                                                attrs={"kind": kind, "total": len(positions)}))


def _on_diff_select(classes: list[str]) -> None:
    """on_select: keep the clicked cell's classes in our own key (the chart's selection is
    lost whenever the figure changes, e.g. to outline the cell)."""
    cell = cell_selection.selection_from_event(st.session_state.get("cmp_cm"), classes)
    if cell is not None:
        st.session_state[CELL_KEY] = (cell.true, cell.pred)


def _difference(pair: Pair) -> None:
    n = len(pair.classes)
    diff = comparison.difference(pair.paired, n)
    a_right, b_right = int(np.trace(diff.a)), int(np.trace(diff.b))
    total = len(pair.paired)
    k1, k2, k3 = st.columns(3)
    k1.metric("A correct", f"{a_right:,} of {total:,}", help=f"{format_pct(a_right / total)} accuracy")
    k2.metric("B correct", f"{b_right:,} of {total:,}", delta=f"{b_right - a_right:+,} vs A",
              help=f"{format_pct(b_right / total)} accuracy")
    k3.metric("Predictions changed", f"{int((pair.paired.a_pred != pair.paired.b_pred).sum()):,}",
              help="images that B puts in another cell than A")
    value = st.session_state.get(CELL_KEY)
    cell = cell_selection.Cell(*value) if value and max(value) < n else None
    # Superclass by superclass where both runs group their classes alike (the classes are the same).
    grid = confusion_figures.grouped_grid(diff.a + diff.b, pair.classes, pair.superclass_of,
                                          pair.superclasses) if pair.superclass_of else None
    many = n > WIDE_MATRIX_FROM
    mat_col, gal_col = (st.container(), st.container()) if many else st.columns([11, 10], gap="medium")
    with mat_col:
        st.plotly_chart(confusion_figures.difference_figure(diff.a, diff.b, pair.classes,
                                                            selected=(cell.true, cell.pred) if cell else None,
                                                            height=WIDE_MATRIX_HEIGHT if many else 600,
                                                            grid=grid, group=pair.group),
                        key="cmp_cm", on_select=lambda: _on_diff_select(pair.classes), selection_mode="points",
                        config={"displayModeBar": False})
        st.caption("Each cell: B's count − A's count (rows: true class, columns: predicted class"
                   + (", superclass by superclass (lines between superclasses)" if grid else "") + "); blue where "
                   "B puts more images, red where fewer. Hover for both counts; click a cell for the images that "
                   "moved into or out of it" + (" (cells neither run has images in take no click)." if grid else "."))
    with gal_col:
        if cell is None:
            st.info("Click a cell of the difference to see the images behind it.", icon=":material/touch_app:")
            return
        at = (cell.true, cell.pred)
        h1, h2 = st.columns([5, 1], vertical_alignment="center")
        h1.markdown(f"**true {md_escape(pair.classes[cell.true])} → predicted {md_escape(pair.classes[cell.pred])}**"
                    f": A {diff.a[at]:,} images, B {diff.b[at]:,} ({diff.diff[at]:+,})")
        h2.button("Clear", key="cmp_clear", on_click=st.session_state.pop, args=(CELL_KEY, None),
                  icon=":material/close:")
        entered, left = comparison.cell_changes(pair.paired, cell)
        _compared_gallery(pair, entered, "entered", "Entered: in this cell for B, not for A", "b", "cmp_page_in")
        _compared_gallery(pair, left, "left", "Left: in this cell for A, not for B", "a", "cmp_page_out")


def _flips(pair: Pair) -> None:
    a_only, b_only = comparison.flips(pair.paired)
    a_counts, b_counts = comparison.flip_counts(pair.paired, len(pair.classes))
    c_table, c_chart = st.columns([2, 3], gap="large")
    with c_table:  # 10 classes whole; 100 (3,573 px of rows) scroll in as much room
        table = pd.DataFrame(comparison.flip_table(a_counts, b_counts, pair.classes, pair.group))
        common.table(table, hide_index=True, width="stretch", height=35 * (min(len(pair.classes), 10) + 2) + 3)
    with c_chart:
        st.plotly_chart(confusion_figures.flip_counts_figure(a_counts, b_counts, pair.classes,
                                                             superclass_of=pair.superclass_of,
                                                             superclasses=pair.superclasses),
                        key="cmp_flip_bars", config={"displayModeBar": False})
    g_a, g_b = st.columns(2, gap="medium")
    with g_a:
        _compared_gallery(pair, a_only, "a-right", "A right, B wrong", "b", "cmp_page_a")
    with g_b:
        _compared_gallery(pair, b_only, "b-right", "B right, A wrong", "a", "cmp_page_b")


def difference_view(chosen: list[runs.RunInfo]) -> None:
    """The pickers, then the difference of A's and B's confusion matrices."""
    pair = _load_pair(chosen)
    if pair is not None:
        _difference(pair)


def flips_view(chosen: list[runs.RunInfo]) -> None:
    """The pickers, then the images one run gets right and the other wrong."""
    pair = _load_pair(chosen)
    if pair is not None:
        _flips(pair)
