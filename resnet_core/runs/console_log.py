"""The last lines a trainer printed (console.log, else train.log): why a run that died
early died, in its own words, and how far the work before its run (a download, decoding
an image folder) has gone."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .files import open_run_file
from .layout import CONSOLE_FILE, LOG_FILE, RunFolderError


def output_tail(run_dir: Path, lines: int, max_bytes: int) -> list[str]:
    """The last ``lines`` non-blank lines a trainer wrote to its run folder's console.log
    (stdout and stderr of a trainer the dashboard launched: the log plus any traceback or
    argument error), else train.log, read from their last ``max_bytes``; [] when neither
    holds any. A progress bar's line (redrawn with carriage returns) is its last state.
    RunFolderError naming the file when the first log there is a symbolic link, a FIFO, a
    folder...: a link could lead to any file the reader may read, so none is shown."""
    for name in (CONSOLE_FILE, LOG_FILE):
        try:
            with open_run_file(run_dir, name) as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - max_bytes))
                text = f.read().decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            continue
        out = [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
        if tail := [line for line in out if line.strip()][-lines:]:
            return tail
    return []


def last_output_line(run_dir: Path) -> str:
    """output_tail's last line, its spaces collapsed, at most 300 characters, from the last
    4 KB; "" when none or unreadable: a trainer that refused or died before config.json says
    why there."""
    try:
        tail = output_tail(run_dir, 1, 4096)
    except (OSError, RunFolderError):
        return ""
    return " ".join(tail[0].split())[:300] if tail else ""


def last_words(run_dir: Path) -> str:
    """RunInfo.warning of a run that failed to start: why, as its output says."""
    last = last_output_line(run_dir)
    return (f"The trainer exited before starting the run: {last}" if last else
            "The trainer exited before starting the run and said nothing (no console.log or train.log).")


@dataclass(frozen=True)
class StartingProgress:
    """A step of the work a trainer does before its run folder has a record: what, how much
    of how much, in which unit."""

    doing: str
    done: int
    total: int
    unit: str

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0

    @property
    def line(self) -> str:
        """As the trainer prints it, on stderr (a launched trainer's lands in console.log)."""
        return f"{self.doing}: {self.done:,} of {self.total:,} {self.unit} ({self.percent}%)"


_PROGRESS_LINE = re.compile(r"(?P<doing>.+): (?P<done>[\d,]+) of (?P<total>[\d,]+) (?P<unit>\w+) \(\d+%\)")


def starting_progress(run_dir: Path) -> StartingProgress | None:
    """The step the trainer last printed, when the last line of its output is one
    (StartingProgress.line); None otherwise or unreadable."""
    try:
        tail = output_tail(run_dir, 1, 8192)  # whole: last_output_line cuts a long folder's path
    except (OSError, RunFolderError):
        return None
    found = _PROGRESS_LINE.fullmatch(tail[0]) if tail else None
    if found is None:
        return None
    done, total = (int(found[k].replace(",", "")) for k in ("done", "total"))
    return StartingProgress(found["doing"], done, total, found["unit"]) if 0 <= done <= total else None
