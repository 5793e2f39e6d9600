"""What a box or lasso selection on the data map selects (no Streamlit here).

A Plotly selection event (Streamlit's event object or a plain dict) carries the areas the
user drew, in data coordinates: ``selection.box`` ({"x": [x0, x1], "y": [y0, y1]} each)
and ``selection.lasso`` ({"x": [...], "y": [...]}: the polygon's corners). The images
selected are the ones inside any of them, found here from the images' own
(variability, confidence), not from the event's ``points``: the areas are a few numbers to
keep in session state across reruns (the chart's own selection is lost whenever its
figure changes), and they select the same images from both of the map's traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Area:
    kind: str  # "box" or "lasso"
    x: tuple[float, ...]  # box: (x0, x1); lasso: the polygon's corners
    y: tuple[float, ...]


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def selection_areas(event: Any) -> tuple[Area, ...]:
    """The boxes and lassos of a selection event, in the order drawn; () for none (a
    cleared selection, or an event without areas)."""
    selection = _field(event, "selection") if event is not None else None
    if selection is None:
        return ()
    areas = []
    for kind, least in (("box", 2), ("lasso", 3)):
        for drawn in _field(selection, kind) or ():
            x, y = _field(drawn, "x") or (), _field(drawn, "y") or ()
            if len(x) >= least and len(x) == len(y):
                areas.append(Area(kind, tuple(map(float, x)), tuple(map(float, y))))
    return tuple(areas)


def _inside_polygon(px: np.ndarray, py: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Even-odd rule: a point is inside when a ray to its right crosses the polygon's edges
    an odd number of times. Only points in the polygon's bounding box are tested."""
    inside = np.zeros(len(px), dtype=bool)
    near = np.flatnonzero((px >= min(xs)) & (px <= max(xs)) & (py >= min(ys)) & (py <= max(ys)))
    x, y = px[near], py[near]
    crossings = np.zeros(len(near), dtype=bool)
    corners = list(zip(xs, ys, strict=True))
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):
        if y1 == y2:
            continue
        spans = (y1 > y) != (y2 > y)
        crossings ^= spans & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    inside[near] = crossings
    return inside


def inside(areas: Sequence[Area], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) bool: which points (x, y) lie in any of the areas (a box's edges included)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    hit = np.zeros(len(x), dtype=bool)
    for area in areas:
        if area.kind == "box":
            (x0, x1), (y0, y1) = sorted(area.x), sorted(area.y)
            hit |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        else:
            hit |= _inside_polygon(x, y, area.x, area.y)
    return hit


@dataclass(frozen=True)
class Selected:
    positions: np.ndarray  # rows of the training record, the least confident first (ties: record order)
    region_counts: dict[str, int]  # images per region name, every region listed
    flipped: int | None  # images with a flipped label among them; None when the run flipped none
    flipped_by_region: dict[str, int] | None


def selected_images(areas: Sequence[Area], variability: np.ndarray, confidence: np.ndarray, region: np.ndarray,
                    region_names: Sequence[str], flipped: np.ndarray | None = None) -> Selected:
    """The training images in the areas, the least confident first, their count per region
    (region: codes into region_names) and, when any label was flipped, how many of them
    were flipped, in all and per region."""
    confidence = np.asarray(confidence)
    rows = np.flatnonzero(inside(areas, variability, confidence))
    rows = rows[np.argsort(confidence[rows], kind="stable")]
    codes = np.asarray(region)[rows]  # an image never presented has no coordinates, so no code -1 here
    per_region = np.bincount(codes, minlength=len(region_names))
    counts = {name: int(n) for name, n in zip(region_names, per_region, strict=True)}
    if flipped is None or not np.asarray(flipped).any():
        return Selected(rows, counts, None, None)
    marked = np.asarray(flipped, dtype=bool)[rows]
    per_region = np.bincount(codes[marked], minlength=len(region_names))
    return Selected(rows, counts, int(marked.sum()),
                    {name: int(n) for name, n in zip(region_names, per_region, strict=True)})
