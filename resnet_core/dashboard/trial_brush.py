"""Brushing a search's parallel coordinates: each axis's values as the figure draws them
(categories as their tick's position, a wide positive range in log10), the ranges brushed
on its axes as plotly.js reports them, and the trials inside all of them, which the
trials table keeps. Pure: app_pages/search_view.py keeps the ranges between reruns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# {axis label: [[lo, hi], ...]}: an axis's brushed ranges in the values it draws.
Ranges = dict[str, list[list[float]]]
# A search's space as its record declares it (sweep_search.space_of): {field: the values
# varied, or the range {low, high, log}}.
Space = dict[str, list | dict]


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def axis(name: str, declared: list | dict, values: pd.Series) -> dict:
    """One parcoords axis (its label, values and ticks) from what the search declares, so it
    stays the same axis while a live search adds trials (a brush kept on it keeps its
    meaning): categories as ticks at their place in the declared list (every one, tried
    or not), a log range or a value list wider than 100x in log10. Judged from the values
    seen so far, a category tried later moved the ticks after it and a kept brush then
    held another category."""
    if isinstance(declared, dict):
        wide = declared["log"]
    elif _numeric(declared):
        wide = min(declared) > 0 and max(declared) / min(declared) > 100
    else:
        labels = [str(v) for v in declared]
        codes = values.astype(str).map({label: i for i, label in enumerate(labels)})
        return dict(label=name, values=codes, tickvals=list(range(len(labels))), ticktext=labels)
    return dict(label=f"log10 {name}", values=values.map(math.log10)) if wide else dict(label=name, values=values)


def axes(table: pd.DataFrame, space: Space, objective: str) -> list[dict]:
    """The axes of the completed trials of a trials table: one per field of the space, then
    the objective."""
    done = table[table["state"] == "completed"]
    return [axis(name, declared, done[name]) for name, declared in space.items()] + \
        [dict(label=objective, values=done[objective])]


def ranges_from_event(brushed: dict | None) -> Ranges:
    """{label: constraintrange} from the browser, an axis's constraintrange being plotly's
    [lo, hi] or [[lo, hi], ...]: each as a list of [lo, hi] (lo first); an axis without
    a range left out."""
    ranges = {}
    for label, value in (brushed or {}).items():
        spans = [value] if value and not isinstance(value[0], (list, tuple)) else (value or [])
        spans = [sorted(float(v) for v in span) for span in spans if len(span) == 2]
        if spans:
            ranges[label] = spans
    return ranges


def inside(table: pd.DataFrame, space: Space, objective: str, ranges: Ranges) -> pd.Series:
    """Which rows of the trials table lie inside every brushed range (bounds included, as
    plotly.js draws them): with a range, only completed trials, the ones drawn; with none,
    every row. A range on an axis the figure no longer has is ignored."""
    brushed = [(a["values"], ranges[a["label"]]) for a in axes(table, space, objective) if ranges.get(a["label"])]
    if not brushed:
        return pd.Series(True, index=table.index)
    done = table["state"] == "completed"
    keep = np.ones(int(done.sum()), dtype=bool)
    for values, spans in brushed:
        values = np.asarray(values, dtype=float)
        keep &= np.any([(values >= lo) & (values <= hi) for lo, hi in spans], axis=0)
    return pd.Series(keep, index=table.index[done]).reindex(table.index, fill_value=False)


def constrained(dims: list[dict], ranges: Ranges) -> list[dict]:
    """The axes with their kept ranges set (constraintrange), for the figure to draw them
    again after a rerun."""
    out = []
    for d in dims:
        spans = ranges.get(d["label"])
        out.append({**d, "constraintrange": spans[0] if len(spans) == 1 else spans} if spans else d)
    return out
