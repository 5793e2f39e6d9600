"""Analyze's confusion matrix. A run whose classes have superclasses (CIFAR-100) gets a view
picker: the superclass matrix (a click on a cell drills down to that pair of superclasses),
every class grouped by superclass, or the classes of one superclass pair. A click on a class
cell, in any view, selects it (CELL_KEY) for the gallery."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from resnet_core import runs
from resnet_core.dashboard import cell_selection, class_groups, confusion_figures
from resnet_core.formatting import md_escape
from resnet_core.metrics import coarse_confusion

CELL_KEY = "an_cell"  # our own copy of the clicked cell: (true, pred)
VIEW_KEY = "an_view"
PAIR_KEYS = ("an_sc_true", "an_sc_pred")  # the superclass pair shown: (true, predicted)
COARSE_CHART = "an_cm_coarse"
FOLLOW_KEY = "an_pair_follows_cell"  # a cell was selected: the pair view shows its superclasses
VIEWS = {"superclasses": "superclasses", "classes": "all classes", "pair": "one superclass pair"}


def set_cell(t: int, p: int) -> None:
    st.session_state[CELL_KEY] = (int(t), int(p))
    st.session_state["an_page"] = 1
    st.session_state[FOLLOW_KEY] = True


def clear_cell() -> None:
    st.session_state.pop(CELL_KEY, None)


def _on_select(chart: str, classes: list[str]) -> None:
    """on_select: copy the clicked cell into our own key (the chart's own selection is lost
    whenever the figure changes, e.g. to outline the selected cell)."""
    cell = cell_selection.selection_from_event(st.session_state.get(chart), classes)
    if cell is not None:
        set_cell(cell.true, cell.pred)


def _on_coarse_select(superclasses: list[str]) -> None:
    """on_select of the superclass matrix: open the pair of superclasses clicked."""
    block = cell_selection.selection_from_event(st.session_state.get(COARSE_CHART), superclasses)
    if block is not None:
        st.session_state[PAIR_KEYS[0]], st.session_state[PAIR_KEYS[1]] = block.true, block.pred
        st.session_state[VIEW_KEY] = "pair"
        st.session_state.pop(FOLLOW_KEY, None)


def _chart(fig, key: str, on_select) -> None:
    st.plotly_chart(fig, key=key, on_select=on_select, selection_mode="points", config={"displayModeBar": False})


def view_picker(info: runs.RunInfo, classes: list[str]) -> str | None:
    """The view picked for a run whose classes have superclasses (set by a click on the
    superclass matrix too); None for a run without them."""
    if not info.superclass_of or len(info.superclass_of) != len(classes):
        return None
    st.session_state.setdefault(VIEW_KEY, "superclasses")
    return st.segmented_control("View", list(VIEWS), key=VIEW_KEY, required=True,
                                format_func=lambda v: f"all {len(classes)} classes" if v == "classes" else VIEWS[v])


def matrix(view: str | None, info: runs.RunInfo, cm: np.ndarray, classes: list[str], mode: str,
           cell: cell_selection.Cell | None) -> None:
    """The matrix of the view (see :func:`view_picker`), clickable."""
    superclass_of, superclasses = info.superclass_of, info.superclasses
    selected = (cell.true, cell.pred) if cell else None
    if view is None:  # no superclasses: every class, in label order, as always
        _chart(confusion_figures.confusion_figure(cm, classes, mode, selected=selected), "an_cm",
               lambda: _on_select("an_cm", classes))
        st.caption("Rows: true class · columns: predicted class. Click a cell to see its images; "
                   "click a diagonal cell for the correctly classified ones.")
        return
    group = [superclasses[s] for s in superclass_of]
    if view == "classes":
        grid = confusion_figures.grouped_grid(cm, classes, superclass_of, superclasses)
        _chart(confusion_figures.confusion_figure(cm, classes, mode, selected, height=1100, grid=grid, group=group),
               "an_cm", lambda: _on_select("an_cm", classes))
        st.caption("Rows: true class · columns: predicted class, grouped by superclass (lines between "
                   "superclasses). Hover a cell for its classes; click one to see its images (cells "
                   "without images take no click).")
    elif view == "pair":
        _pair(cm, classes, mode, selected, superclass_of, superclasses, group)
    else:
        _superclasses(cm, superclass_of, superclasses, mode, cell)


def _superclasses(cm: np.ndarray, superclass_of: list[int], superclasses: list[str], mode: str,
                  cell: cell_selection.Cell | None) -> None:
    """The superclass matrix, the selected cell's superclass pair outlined; a click drills down."""
    coarse = coarse_confusion(cm, superclass_of, len(superclasses))
    grid = dataclasses.replace(confusion_figures.full_grid(len(superclasses)),
                               titles=("true superclass", "predicted superclass"))
    selected = (superclass_of[cell.true], superclass_of[cell.pred]) if cell else None
    fig = confusion_figures.confusion_figure(coarse, superclasses, mode, selected, height=700, grid=grid,
                                             click_hint="click to see its classes")
    _chart(fig, COARSE_CHART, lambda: _on_coarse_select(superclasses))
    total = int(coarse.sum())
    right = f" · superclass accuracy {100 * np.trace(coarse) / total:.2f}%" if total else ""
    st.caption("Rows: true superclass · columns: predicted superclass (an image counts in the superclasses of "
               "its true and predicted classes). Click a cell to see its classes' matrix, and there a class "
               f"cell for its images{right}.")


def _pair(cm: np.ndarray, classes: list[str], mode: str, selected: tuple[int, int] | None,
          superclass_of: list[int], superclasses: list[str], group: list[str]) -> None:
    """The classes of one superclass (rows) against those of another (columns), picked here
    or by a click on the superclass matrix; normalised over whole rows or columns."""
    follow = st.session_state.pop(FOLLOW_KEY, False) and selected is not None
    for key, label in zip(PAIR_KEYS, selected or (0, 0), strict=True):
        if follow:  # a cell chosen elsewhere (the most-confused pairs): show it in its pair
            st.session_state[key] = superclass_of[label]
        st.session_state.setdefault(key, superclass_of[label])
    c_true, c_pred = st.columns(2)
    options = list(range(len(superclasses)))
    true_sc = c_true.selectbox("True superclass", options, key=PAIR_KEYS[0], format_func=superclasses.__getitem__)
    pred_sc = c_pred.selectbox("Predicted superclass", options, key=PAIR_KEYS[1],
                               format_func=superclasses.__getitem__)
    rows = class_groups.members(classes, superclass_of, true_sc)
    cols = class_groups.members(classes, superclass_of, pred_sc)
    grid = confusion_figures.grouped_grid(cm, classes, superclass_of, superclasses, rows=rows, cols=cols)
    _chart(confusion_figures.confusion_figure(cm, classes, mode, selected, height=480, grid=grid, group=group),
           "an_cm_pair", lambda: _on_select("an_cm_pair", classes))
    block = int(cm[np.ix_(rows, cols)].sum())
    st.caption(f"{block:,} of the {int(cm[rows].sum()):,} images of {md_escape(superclasses[true_sc])} were "
               f"predicted as a class of {md_escape(superclasses[pred_sc])}. Rows: true class · columns: "
               "predicted class; percentages are of the whole row (or column). Click a cell to see its images.")
