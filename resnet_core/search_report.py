"""A search's ``--report``: one row per trial in the order asked (trial, state with
``pruned``, its values, the objective and the metric it came from, epochs_done: the epochs
trained, and run), read from the sweep record and the run folders, without Optuna. The
epochs trained are not "epochs": a search may vary epochs, whose sampled values that column
overwrote."""

from __future__ import annotations

import json

from . import runs
from .results import FORMATS, csv_table, markdown_table


def trial_rows(info: runs.SweepInfo) -> list[dict]:
    """The trials of a search's record (a point each), best objective first, then the rest
    in the order asked."""
    objective = info.search["objective"]
    rows = []
    for i, p in enumerate(info.record["points"]):
        point = info.points[i]
        status = point.run.status if point.run is not None else {}
        rows.append({"trial": p["trial"], "state": point.state, **p["values"], objective: p.get("value"),
                     "metric": p.get("metric"), "epochs_done": status.get("epoch"),
                     "run": point.run_dir.name if point.run_dir else None})
    return sorted(rows, key=lambda r: (r[objective] is None, -(r[objective] or 0.0)))


def trials_report(info: runs.SweepInfo, fmt: str = "md") -> str:
    """The trials as Markdown, CSV or JSON."""
    rows = trial_rows(info)
    if fmt == "md":  # for reading: 4 significant digits of a sampled float (0.1057, not 0.10570046446158274)
        objective = info.search["objective"]
        shown = [{k: "—" if v is None else f"{v:.4f}" if k == objective else f"{v:.4g}" if isinstance(v, float) else v
                  for k, v in r.items()} for r in rows]
        return markdown_table(shown)
    if fmt == "csv":
        return csv_table(rows)
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
