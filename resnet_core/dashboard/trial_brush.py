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


def axis(name: str, values: pd.Series) -> dict:
    """One parcoords axis (its label, values and ticks): categories as ticks, a positive range
    wider than 100x in log10."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        labels = sorted(values.astype(str).unique())
        codes = values.astype(str).map({label: i for i, label in enumerate(labels)})
        return dict(label=name, values=codes, tickvals=list(range(len(labels))), ticktext=labels)
    if values.min() > 0 and values.max() / values.min() > 100:
        return dict(label=f"log10 {name}", values=values.map(math.log10))
    return dict(label=name, values=values)


def axes(table: pd.DataFrame, params: list[str], objective: str) -> list[dict]:
    """The axes of the completed trials of a trials table: one per param, then the objective."""
    done = table[table["state"] == "completed"]
    return [axis(p, done[p]) for p in params] + [dict(label=objective, values=done[objective])]


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


def inside(table: pd.DataFrame, params: list[str], objective: str, ranges: Ranges) -> pd.Series:
    """Which rows of the trials table lie inside every brushed range (bounds included, as
    plotly.js draws them): with a range, only completed trials, the ones drawn; with none,
    every row. A range on an axis the figure no longer has is ignored."""
    brushed = [(a["values"], ranges[a["label"]]) for a in axes(table, params, objective) if ranges.get(a["label"])]
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
