"""Removing the temp files that killed writers left in run folders: maintenance that a
trainer does when it starts (see :class:`~resnet_core.runs.writing.RunWriter`), so that reading never writes."""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

from .layout import DYNAMICS_DIR, PREDICTIONS_DIR, STALE_TEMP_AGE_S, TEMP_FILES
from .reading import read_run


def remove_stale_temp_files(run_dir: Path, older_than_s: float = 0.0) -> list[Path]:
    """Delete the temp files (``.*.tmp``) that a killed writer left in a run folder and its
    predictions/ and dynamics/ folders, if they are at least older_than_s seconds old; returns those
    removed. Call it only for a folder no live trainer writes to: a live trainer's temp file
    is a write in progress."""
    run_dir = Path(run_dir)
    # A linked predictions/ or dynamics/ would lead out of the run folder.
    folders = [run_dir] + [run_dir / name for name in (PREDICTIONS_DIR, DYNAMICS_DIR)
                           if (run_dir / name).is_dir() and not (run_dir / name).is_symlink()]
    removed = []
    now = time.time()
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # gone meanwhile, or not ours to list
            continue
        for entry in entries:
            if not fnmatch.fnmatchcase(entry.name, TEMP_FILES):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                    continue
                os.unlink(entry.path)
            except OSError:  # renamed into place meanwhile, or not ours to delete
                continue
            removed.append(Path(entry.path))
    return removed


# When remove_stale_temps last swept each folder (time.monotonic()).
_SWEPT: dict[Path, float] = {}


def remove_stale_temps(runs_dir: Path) -> list[Path]:
    """Remove the temp files at least STALE_TEMP_AGE_S old from every run of runs_dir that
    no live trainer writes to (see :func:`remove_stale_temp_files`), each folder at most
    every STALE_TEMP_AGE_S seconds; read-only and unreadable runs, symbolic links among
    them, and folders that are no run (yet) are left as they are. Returns those removed."""
    runs_dir = Path(runs_dir)
    try:
        folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # no runs folder yet, or one we may not list
        return []
    now = time.monotonic()
    removed: list[Path] = []
    for folder in folders:
        swept = _SWEPT.get(folder)
        if swept is not None and now - swept < STALE_TEMP_AGE_S:
            continue
        info = read_run(folder)
        if info is None or info.is_active or info.problem is not None or info.read_only:
            continue
        removed += remove_stale_temp_files(folder, older_than_s=STALE_TEMP_AGE_S)
        _SWEPT[folder] = now
    return removed
