"""What a click or a box selection on a Plotly chart points at (no Streamlit here).

A selection event (Streamlit's event object or a plain dict) names its points; the last
one's ``customdata`` is what the chart attached to it: for a confusion matrix a cell
(true class t, predicted class p), for a reliability diagram a bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Cell:
    true: int
    pred: int

    @property
    def correct(self) -> bool:
        return self.true == self.pred


def selected_point(event: Any) -> Any:
    """The last point of a Plotly selection event (Streamlit's event object or a plain
    dict), or None for an empty selection."""
    if event is None:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if selection is None:
        return None
    points = selection.get("points") if isinstance(selection, Mapping) else getattr(selection, "points", None)
    return points[-1] if points else None


def selected_customdata(event: Any) -> list | None:
    """The customdata of a Plotly selection event's last point as a list (a numpy customdata
    comes back as {"0": a, "1": b}, a scalar one as itself), or None without any."""
    point = selected_point(event)
    custom = point.get("customdata") if isinstance(point, Mapping) else None
    if custom is None:
        return None
    if isinstance(custom, Mapping):
        return [custom.get(str(i)) for i in range(len(custom))]
    return list(custom) if isinstance(custom, (list, tuple)) else [custom]


def selection_from_event(event: Any, classes: Sequence[str] | None = None) -> Cell | None:
    """The cell a Plotly selection event points at, or None for an empty selection.

    Reads the last point of the selection (``selection.points[-1]``): its ``customdata``
    ([true, pred]), falling back to the category labels ``y`` (true) and ``x`` (predicted)
    when customdata is missing.
    Accepts Streamlit's event object or a plain dict.
    """
    point = selected_point(event)
    if point is None:
        return None
    custom = selected_customdata(event)
    if custom is not None and len(custom) >= 2:
        try:
            return Cell(int(custom[0]), int(custom[1]))
        except (TypeError, ValueError):
            pass
    if classes is not None and isinstance(point, Mapping):
        names = [str(c) for c in classes]
        x, y = point.get("x"), point.get("y")
        if x in names and y in names:
            return Cell(names.index(y), names.index(x))
    return None
