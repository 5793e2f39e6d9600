"""Reading one run folder: its records checked against the format, and whether its trainer
still runs. Reading never raises: a bad folder reads as ``unreadable``."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from .annotations import read_annotations
from .console_log import last_words
from .files import entry_kind, read_json_object
from .layout import (
    ACTIVE_STATES,
    CONFIG_FILE,
    CRASHED,
    FAILED_TO_START,
    FORMAT_VERSION,
    MAX_CLASSES,
    STALE_S,
    STATE_NAME,
    STATUS_FILE,
    UNREADABLE,
    RunFolderError,
)
from .processes import heartbeat_skew, trainer_alive
from .run_info import STATES, RunInfo
from .values import as_float, as_int, is_pid, quoted


# Why a runs-folder entry that is a symbolic link is not read (see folder_format.py).
SYMLINKED_RUN = ("a symbolic link, not a run folder: not read through; Delete removes the link only "
                 "(link the whole runs folder instead)")


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in this folder, or None if it is not a run folder (yet): neither config.json
    nor status.json.

    Never raises for what the folder holds: a folder that cannot be read as the format says
    comes back in state UNREADABLE with the reason in ``problem``.
    """
    return checked_liveness(read_records(Path(run_dir)))


def checked_liveness(info: RunInfo | None) -> RunInfo | None:
    """info (a new RunInfo) as of now: CRASHED if its status names an active state but
    its trainer is gone."""
    if info is None:
        return None
    if info.state not in ACTIVE_STATES:
        return replace(info)
    if not os.path.lexists(info.path / CONFIG_FILE) and not trainer_alive(info.status):
        return replace(info, state=FAILED_TO_START, warning=last_words(info.path))
    now = time.time()
    skew = heartbeat_skew(info.status, now)
    warning = written_at = None
    if skew is not None:
        written_at = _mtime(info.path / STATUS_FILE)
        warning = (f"status.json's last heartbeat is {skew:,.0f} s ahead of this machine's clock (clock skew): "
                   f"the run is taken for gone once status.json has not changed for {STALE_S:.0f} s")
    if not trainer_alive(info.status, now, written_at):
        return replace(info, state=CRASHED, warning=warning)
    return replace(info, warning=warning)


def _mtime(path: Path) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _version_problem(name: str, record: dict) -> str | None:
    version = record.get("format_version", 1)
    if as_int(version, 1, 2 ** 31) is None:
        return f"{name}: format_version {quoted(version)} is not a version number"
    return None


def _config_problem(config: dict) -> str | None:
    for key in ("config", "resolved", "model", "versions"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            return f"config.json: {key} is {entry_kind(config[key])}, not an object"
    classes = config.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return "config.json: classes is not a list of names"
    if classes is not None and len(classes) > MAX_CLASSES:
        return f"config.json: classes lists {len(classes):,} names, more than the {MAX_CLASSES:,} a run may have"
    if config.get("created") is not None and as_float(config["created"]) is None:
        return f"config.json: created {quoted(config['created'])} is not a time"
    return None


def _status_problem(status: dict, newer: bool) -> str | None:
    state = status.get("state", "queued")
    # A newer format may add states; it must still name them plainly.
    if not isinstance(state, str) or not (state in STATES or (newer and STATE_NAME.fullmatch(state))):
        return f"status.json: state {quoted(state)} is not a run state"
    if status.get("pid") is not None and not is_pid(status["pid"]):
        return f"status.json: pid {quoted(status['pid'])} is not a process id"
    start = status.get("pid_start")
    if start is not None and as_int(start, 0, 2 ** 63 - 1) is None:
        return f"status.json: pid_start {quoted(start)} is not a start time"
    return None


def read_records(run_dir: Path) -> RunInfo | None:
    """read_run but for the liveness of the trainer: what config.json, status.json and the
    annotations say. A folder with status.json but no config.json is a run whose trainer has
    not written its config yet (or died before it did: see checked_liveness); one with neither
    is none. A symbolic link's annotations are not read through it."""
    info = _trainer_records(run_dir)
    if info is None or info.problem == SYMLINKED_RUN:
        return info
    return replace(info, annotations=read_annotations(run_dir, info.config))


def _trainer_records(run_dir: Path) -> RunInfo | None:
    """read_records but for the annotations: what the trainer wrote."""
    if run_dir.is_symlink():
        if not run_dir.is_dir():  # dangling, or a link to a file: no run, as a file would be
            return None
        return RunInfo(path=run_dir, run_id=run_dir.name, state=UNREADABLE, problem=SYMLINKED_RUN)
    config_problem = status_problem = None
    try:
        config = read_json_object(run_dir, CONFIG_FILE)
    except (FileNotFoundError, NotADirectoryError):
        config = None
    except RunFolderError as e:
        config, config_problem = {}, str(e)
    try:
        status = read_json_object(run_dir, STATUS_FILE)
    except (FileNotFoundError, NotADirectoryError):
        if config is None:
            return None
        status = {}
    except RunFolderError as e:
        status, status_problem = {}, str(e)
    # The format versions of the records present: a config.json not written yet says nothing of it.
    versions = [record.get("format_version", 1) for record in (config, status) if record]
    if config is None:
        config = {}
        if not status_problem and status.get("state", "queued") not in ACTIVE_STATES:
            config_problem = "config.json is missing"  # written before any state but queued or running
    config_problem = config_problem or _version_problem("config.json", config)
    status_problem = status_problem or _version_problem("status.json", status)
    versions = versions or [1]
    newer = not (config_problem or status_problem) and max(versions) > FORMAT_VERSION
    config_problem = config_problem or _config_problem(config)
    status_problem = status_problem or _status_problem(status, newer)
    if config_problem or status_problem:
        # A status.json that reads well is kept: it may name a trainer that still writes here.
        return RunInfo(path=run_dir, run_id=run_dir.name, state=UNREADABLE, status={} if status_problem else status,
                       problem=config_problem or status_problem)
    note = None
    if newer:
        note = (f"Written in run-folder format {max(versions)}, newer than the {FORMAT_VERSION} this "
                f"version of ResNet Studio writes: shown read-only.")
    elif min(versions) < FORMAT_VERSION:
        note = (f"Written in run-folder format {min(versions)}: the trainer resumes only format "
                f"{FORMAT_VERSION} runs, so launch it again to continue.")
    return RunInfo(path=run_dir, run_id=run_dir.name, state=status.get("state", "queued"), config=config,
                   status=status, note=note, read_only=newer)
