"""Listing the runs of a runs folder, rereading a run's records only when they changed."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .annotations import ANNOTATIONS_FILE
from .console_log import last_words
from .layout import CONFIG_FILE, CONSOLE_FILE, FAILED_TO_START, STALE_S, STATUS_FILE
from .reading import checked_liveness, read_records
from .run_info import RunInfo


def may_be_starting(run_dir: Path) -> bool:
    """Whether a folder with neither config.json nor status.json may still be its trainer
    starting (importing, loading data: it writes status.json first): the folder or its
    console.log changed within STALE_S. A launched trainer prints its download's or
    decoding's progress there at least every few seconds (runs.StartingProgress)."""
    latest = 0.0
    for path in (run_dir, run_dir / CONSOLE_FILE):
        try:
            latest = max(latest, os.lstat(path).st_mtime)
        except OSError:
            continue
    return time.time() - latest < STALE_S


def _unstarted(run_dir: Path) -> RunInfo | None:
    """For list_runs, a folder with neither record: None while it may_be_starting, and a
    run FAILED_TO_START once quiet: the trainer refused or died before writing anything but
    its output. (read_run leaves such a folder None: whoever launched into it, a sweep,
    judges it by its process.)"""
    if may_be_starting(run_dir):
        return None
    return RunInfo(path=run_dir, run_id=run_dir.name, state=FAILED_TO_START, warning=last_words(run_dir))


def _run_folders(runs_dir: Path) -> list[Path]:
    """The entries of runs_dir that may be runs: folders (or links to one), not dot folders;
    [] for no runs folder yet, or one we may not list."""
    try:
        return [p for p in Path(runs_dir).iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def starting_run_ids(runs_dir: Path) -> list[str]:
    """The folders of runs_dir that list_runs leaves out as may_be_starting, newest name
    first: a trainer launched from another tab, or before a reload, still loading its data."""
    return sorted((p.name for p in _run_folders(runs_dir) if not p.is_symlink()
                   and not os.path.lexists(p / CONFIG_FILE) and not os.path.lexists(p / STATUS_FILE)
                   and may_be_starting(p)), reverse=True)


@dataclass
class _Listed:
    """What list_runs last read in a run folder: its records' (and annotations') identities and what they say."""

    identity: tuple
    records: RunInfo | None


# list_runs' memory of each folder it listed. Every page of the dashboard lists the runs: with
# 200 runs that took 34 ms (a third of the Analyze page's script run), 2 of them with the
# two records read and parsed again, 0.6 of them sweeping 400 folders for temp files (a sweep
# that is now cleanup.remove_stale_temps', at a trainer's start).
_LISTED: dict[Path, _Listed] = {}


def _identity(path: Path) -> tuple | None:
    """Which version of a file this is: a writer replaces a record by renaming a new file
    over it (a new inode), and any other change shows in its size, mtime or ctime (which
    `cp -p` or `touch -d` cannot set back); None if missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode


def _listed(run_dir: Path) -> RunInfo | None:
    """read_run for list_runs: the records are read again only when one of them changed
    (taken before the read, so a record replaced meanwhile reads again next time)."""
    identity = (os.path.islink(run_dir), _identity(run_dir / CONFIG_FILE), _identity(run_dir / STATUS_FILE),
                _identity(run_dir / ANNOTATIONS_FILE))
    seen = _LISTED.get(run_dir)
    if seen is None or seen.identity != identity or identity[1] is None:
        seen = _LISTED[run_dir] = _Listed(identity, read_records(run_dir))
    if identity[:3] == (False, None, None):  # a real folder with neither record
        return _unstarted(run_dir)
    return checked_liveness(seen.records)


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under runs_dir, newest first, unreadable ones included (an entry that is a
    symbolic link to a folder among them, unread: see SYMLINKED_RUN), and folders whose
    trainer never wrote a record, as FAILED_TO_START once quiet for STALE_S (see _unstarted).

    It writes nothing (temp files a killed writer left go when a trainer starts: see
    :func:`resnet_core.runs.cleanup.remove_stale_temps`). The RunInfos share their config
    and status dicts with the next listing's: read them, do not change them.
    """
    runs_dir = Path(runs_dir)
    folders = _run_folders(runs_dir)
    present = set(folders)
    # Over a copy of the keys (list() of a dict does not let another thread in): each session
    # of the server lists runs in its own thread, and one that adds a folder meanwhile would
    # end this loop with "dictionary changed size during iteration".
    for gone in [p for p in list(_LISTED) if p.parent == runs_dir and p not in present]:
        _LISTED.pop(gone, None)
    runs = [r for r in (_listed(p) for p in folders) if r is not None]
    return sorted(runs, key=lambda r: (r.config.get("created") or 0, r.run_id), reverse=True)
