"""The Runs page's table: one row per run (config, state, accuracies, epochs, time), the
same type in each column whatever the run folder holds.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .. import runs
from ..evaluation_labels import evaluation_labels
from ..model_names import shortcut_label
from ..progress import compute_progress
from ..runs.values import as_count, as_float

def setting_text(x) -> str | None:
    """A config value as table text: strings as they are, None as None, anything else as its repr."""
    return x if isinstance(x, str) or x is None else repr(x)


def run_summary_row(info: runs.RunInfo) -> dict:
    """One row of the runs table: the run's id, name, tags and note, config (the dataset
    among it), state, best validation accuracy (and what the run validated on), final test
    accuracy, epochs, time (seconds, None before it started); the same type in each column
    whatever the run folder holds."""
    cfg, resolved, status = info.train_config, info.resolved, info.status if isinstance(info.status, dict) else {}
    duration = compute_progress(info).elapsed_s
    done = as_count(status.get("epoch"), 0)
    total = as_count(status.get("total_epochs"), 0) or as_count(cfg.get("epochs"), 0) or None
    return {
        "run": info.run_id,
        "name": info.annotations.name or None,
        "tags": list(info.annotations.tags),
        "note": info.annotations.note or None,
        "state": info.state,
        "problem": info.problem or info.note or info.warning,
        "model": info.model_name or "?",
        "dataset": None if info.problem else info.dataset,  # an unreadable folder's is unknown, not CIFAR-10
        "sweep": setting_text(cfg.get("sweep")),
        "block": setting_text(cfg.get("block")),
        "shortcut": shortcut_label(setting_text(cfg.get("shortcut"))),
        "epochs": f"{done}/{total or '?'}",  # for the run cards; the table sorts by the two numbers
        "epochs done": done,
        "of epochs": total,
        "best val acc": as_float(status.get("best_val_acc")),
        "best epoch": as_count(status.get("best_epoch")) or None,
        "val split": evaluation_labels(info.config).split,
        "test acc": as_float(status.get("test_acc")),
        "time": duration,  # seconds: a number, so that the table sorts by it
        "batch": as_float(cfg.get("batch_size")),
        "lr": as_float(cfg.get("lr")),
        "schedule": setting_text(cfg.get("schedule")),
        "device": setting_text(resolved.get("device") or cfg.get("device")),
        "precision": setting_text(resolved.get("precision") or cfg.get("precision")),
        "created": as_float((info.config if isinstance(info.config, dict) else {}).get("created")),
    }


def runs_table(infos: Sequence[runs.RunInfo]) -> pd.DataFrame:
    """The Runs page's table: run_summary_row of each run, accuracies in percent, created a
    time; runs must not be empty. Every column converts to Arrow (st.dataframe's transport) whatever the folders hold:
    each number in it is one that run_summary_row checked."""
    table = pd.DataFrame([run_summary_row(r) for r in infos])
    for column in ("best val acc", "test acc"):
        table[column] = table[column].map(lambda x: None if x is None else 100 * x)
    table["created"] = pd.to_datetime(table["created"], unit="s", errors="coerce")
    return table.drop(columns="epochs").astype({"of epochs": "Int64"})

