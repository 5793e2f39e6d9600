"""Reading metrics.jsonl: whole rows of the format only, and incrementally for live charts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .layout import (
    METRICS_FILE,
    RunFolderError,
)
from .files import open_run_file
from .values import MAX_COUNT, as_int, loads, raw_decode


def read_metrics(run_dir: Path) -> list[dict]:
    """All complete rows of metrics.jsonl (a half-written last line is left out)."""
    rows, _, _ = read_metrics_since(run_dir, None)
    return rows


@dataclass(frozen=True)
class MetricsCursor:
    """Where the last read of metrics.jsonl stopped: the file's inode and a byte offset."""

    inode: int
    offset: int


ROW_TYPES = ("step", "epoch", "test", "system")


def _is_row(row) -> bool:
    """Whether a parsed line is a row of the format: a JSON object, and for a step, epoch,
    test or system row a whole-number epoch and step where it has them (a step row must
    have its step, an epoch row its epoch)."""
    if not isinstance(row, dict):
        return False
    kind = row.get("type")
    if kind in ROW_TYPES:
        for key in ("epoch", "step"):
            if (key == kind or key in row) and as_int(row.get(key), 0, MAX_COUNT) is None:
                return False
    return True


def _utf8(line: bytes) -> str | None:
    try:
        return line.decode()
    except UnicodeDecodeError:
        return None


def _parse_line(line: str | None):
    """A line's JSON value, or None where it is not JSON or not text. raw_decode first: 200,000
    step rows took 0.85 s through json.loads and 0.64 s through it (0.81 s with runs.values'
    integers); a line it does not take whole (leading spaces, trailing text) goes through
    loads, which decides."""
    if line is None:
        return None
    try:
        value, end = raw_decode(line)
        if not line[end:].strip():
            return value
    except (ValueError, RecursionError):
        pass
    try:
        return loads(line)
    except (ValueError, RecursionError):  # bad JSON
        return None


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
    try:
        lines: list[str | None] = data[:end].decode().split("\n")[:-1]
    except UnicodeDecodeError:  # a line that is not UTF-8 is no row; the others are
        lines = [_utf8(line) for line in data[:end].split(b"\n")[:-1]]
    rows = [row for row in map(_parse_line, lines) if _is_row(row)]
    return rows, MetricsCursor(st.st_ino, offset + end), restarted
