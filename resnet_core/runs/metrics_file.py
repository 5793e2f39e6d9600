"""Reading metrics.jsonl: whole rows of the format only, and incrementally for live charts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .layout import (
    METRICS_FILE,
    RunFolderError,
)
from .processes import (
    _is_int,
)
from .reading import (
    open_run_file,
)


def read_metrics(run_dir: Path) -> list[dict]:
    """All complete rows of metrics.jsonl (a half-written last line is left out)."""
    rows, _, _ = read_metrics_since(run_dir, None)
    return rows


@dataclass(frozen=True)
class MetricsCursor:
    """Where the last read of metrics.jsonl stopped: the file's inode and a byte offset."""

    inode: int
    offset: int


def _metrics_row(line: bytes) -> dict | None:
    """A line of metrics.jsonl as a row, or None for one that is not a row of the format:
    not a JSON object, a step row without a whole-number step, an epoch row without a
    whole-number epoch, or a step, epoch or test row whose epoch or step is not one."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):  # ValueError: bad JSON or not UTF-8
        return None
    if not isinstance(row, dict):
        return None
    kind = row.get("type")
    if kind in ("step", "epoch", "test"):
        for key in ("epoch", "step"):
            # 0..2**53: counts a float can hold, which the charts divide and plot
            if (key == kind or key in row) and not (_is_int(row.get(key)) and 0 <= row[key] <= 2**53):
                return None
    return row


def read_metrics_since(run_dir: Path, cursor: MetricsCursor | None) -> tuple[list[dict], MetricsCursor | None, bool]:
    """Rows appended since cursor, the cursor for next time, and whether the file was read
    from the start again because it was replaced (a resume rewrites it without the rows its
    checkpoint does not cover): then the caller must drop the rows it kept.

    Only whole lines are consumed, so a line the trainer is still writing is read on the
    next call; a live chart therefore reads only what was appended since its last tick.
    Lines that are not rows of the format are skipped; a metrics.jsonl that cannot be read
    (a folder, a symbolic link...) reads as a missing one.
    """
    try:
        f = open_run_file(Path(run_dir), METRICS_FILE)
    except (OSError, RunFolderError):
        return [], None, cursor is not None
    with f:
        st = os.fstat(f.fileno())
        restarted = cursor is not None and (cursor.inode != st.st_ino or st.st_size < cursor.offset)
        offset = cursor.offset if cursor is not None and not restarted else 0
        f.seek(offset)
        try:
            data = f.read()
        except OSError:
            return [], None, cursor is not None
    end = data.rfind(b"\n") + 1
    rows = [row for row in map(_metrics_row, data[:end].splitlines()) if row is not None]
    return rows, MetricsCursor(st.st_ino, offset + end), restarted
