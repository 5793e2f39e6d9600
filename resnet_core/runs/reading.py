"""Reading run folders; reading never raises: a bad folder reads as ``unreadable``."""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import stat
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from ..model_names import model_name
from .layout import (
    _STATE_NAME,
    ACTIVE_STATES,
    CHECKPOINTS,
    CONFIG_FILE,
    CONSOLE_FILE,
    CRASHED,
    FAILED_TO_START,
    FORMAT_VERSION,
    LAST_CHECKPOINT,
    LOG_FILE,
    MAX_CLASSES,
    MAX_JSON_BYTES,
    PREDICTIONS_DIR,
    RESUMABLE_STATES,
    STALE_S,
    STALE_TEMP_AGE_S,
    STATUS_FILE,
    TEMP_FILES,
    UNREADABLE,
    RunFolderError,
)
from .processes import (
    heartbeat_skew,
    trainer_alive,
)
from .values import as_float, as_int, is_pid, loads, quoted


def open_run_file(run_dir: Path, name: str, follow_symlink: bool = False) -> BinaryIO:
    """Open a regular file of a run folder for reading; name is relative to run_dir
    ("status.json", "predictions/val_epoch_001.npz").

    No symbolic link below run_dir is followed, so a link planted in a run folder cannot
    make the dashboard show some other file, and a FIFO cannot hang a page (or a resume).
    follow_symlink follows a link at the file's own name (the trainer's resume reads its
    checkpoint so, then replaces the link with a file of its own). Raises
    FileNotFoundError when the file is missing and RunFolderError when it is anything but
    a readable regular file.
    """
    parts = PurePath(name).parts
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as e:  # e.g. a folder of another user's that this one may not read
        raise RunFolderError(f"the run folder cannot be opened ({e.strerror or e})") from e
    for depth, part in enumerate(parts, 1):
        last = depth == len(parts)
        # O_NONBLOCK: opening a FIFO must not wait for a writer (reads of regular files ignore it).
        flags = os.O_RDONLY | (os.O_NONBLOCK if last else os.O_DIRECTORY)
        if not (last and follow_symlink):
            flags |= os.O_NOFOLLOW
        try:
            child = os.open(part, flags, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            raise
        except OSError as e:
            why = _open_failure(e, part, fd)
            os.close(fd)
            raise RunFolderError(f"{'/'.join(parts[:depth])} {why}") from e
        os.close(fd)
        fd = child
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RunFolderError(f"{name} is {'a folder' if stat.S_ISDIR(mode) else 'not a regular file'}")
    return os.fdopen(fd, "rb")


def _open_failure(e: OSError, name: str, dir_fd: int) -> str:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):  # Linux says ENOTDIR for a link opened as a folder
        try:
            is_link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            is_link = e.errno == errno.ELOOP
        return "is a symbolic link" if is_link else "is not a folder"
    return f"cannot be opened ({e.strerror or e})"


def json_kind(value: Any) -> str:
    """What a JSON value is, for a one-line message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def read_json_object(run_dir: Path, name: str) -> dict:
    """The JSON object in a run folder's file; FileNotFoundError when it is missing,
    RunFolderError for anything else that is not a JSON object. The one way to read a run
    folder's JSON record with the reason it cannot be (every reader, and the trainer's
    resume, read config.json so): no link followed, no FIFO waited on, at most
    MAX_JSON_BYTES, any number, any nesting."""
    with open_run_file(run_dir, name) as f:
        try:
            data = f.read(MAX_JSON_BYTES + 1)
        except OSError as e:
            raise RunFolderError(f"{name} cannot be read ({e.strerror or e})") from e
    if len(data) > MAX_JSON_BYTES:
        raise RunFolderError(f"{name} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    try:
        obj = loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFolderError(f"{name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{name} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise RunFolderError(f"{name} is nested too deeply to read") from None
    if not isinstance(obj, dict):
        raise RunFolderError(f"{name} holds {json_kind(obj)}, not a JSON object")
    return obj


def read_json(path: Path) -> dict | None:
    """The JSON object in a run folder's file, or None when it is missing or is not one."""
    path = Path(path)
    try:
        return read_json_object(path.parent, path.name)
    except (OSError, RunFolderError):
        return None


class State(str, Enum):
    """A run's state: the six that status.json holds, and three that readers derive. Members
    equal their plain strings (``State.RUNNING == "running"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"
    CRASHED = CRASHED  # derived by readers, never written
    FAILED_TO_START = FAILED_TO_START  # derived by readers, never written
    UNREADABLE = UNREADABLE  # derived by readers, never written

    def __str__(self) -> str:
        return self.value


STATES = tuple(s.value for s in State if s not in (State.CRASHED, State.FAILED_TO_START, State.UNREADABLE))
# (STATES: what status.json may say)


def _record(config: Any, key: str) -> dict:
    """config[key] if config is a dict and that is a dict, else {}."""
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, dict) else {}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


@dataclass
class RunInfo:
    """What a reader knows about one run folder. Read its config.json through the typed
    properties (train_config, resolved, model_name, classes), which never raise for odd values."""

    path: Path
    run_id: str
    state: str  # a written state, "crashed", "failed to start" or "unreadable"
    config: dict = field(default_factory=dict)  # {} when unreadable
    status: dict = field(default_factory=dict)  # {} when status.json is missing or unreadable
    problem: str | None = None  # why the folder is unreadable (one line), else None
    note: str | None = None  # set when the folder's format is not FORMAT_VERSION: why it is not resumed
    read_only: bool = False  # written in a newer format: shown, never resumed into or cleaned up
    warning: str | None = None  # what a page should say beside the run's state (e.g. clock skew), else None

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def can_resume(self) -> bool:
        return (self.state in RESUMABLE_STATES and self.note is None
                and (self.path / LAST_CHECKPOINT).exists())

    @property
    def checkpoints(self) -> dict[str, str]:
        """The checkpoints this run holds, by the name a user picks them by ("best", "last")."""
        return {which: name for which, name in CHECKPOINTS.items() if os.path.lexists(self.path / name)}

    @property
    def state_enum(self) -> State | None:
        """state as a State; None for a state that a newer format added."""
        try:
            return State(self.state)
        except ValueError:
            return None

    @property
    def train_config(self) -> dict:
        """The training options config.json records (its "config"); {} when missing."""
        return _record(self.config, "config")

    @property
    def resolved(self) -> dict:
        """What the trainer resolved (device, precision, split sizes, steps); {} until it has."""
        return _record(self.config, "resolved")

    @property
    def world_size(self) -> int:
        """The run's processes (torchrun's ranks); 1 when the record has no usable count."""
        size = self.resolved.get("world_size")
        return as_int(size, 1, 65_536) or 1

    @property
    def model_name(self) -> str:
        """The recorded model name, else "ResNet-<depth>" (or "plain-<depth>") from the config,
        else ""; a value that is not a string shows as its repr."""
        name = _record(self.config, "model").get("name")
        if name is not None and name != "":
            return _as_text(name)
        depth = self.train_config.get("depth")
        return "" if depth is None or depth == "" else model_name(_as_text(depth), self.train_config.get("shortcut"))

    @property
    def classes(self) -> list[str]:
        """The class names config.json records, in label order; [] when there are none."""
        classes = self.config.get("classes") if isinstance(self.config, dict) else None
        return [_as_text(c) for c in classes] if isinstance(classes, list) else []


def _version_problem(name: str, record: dict) -> str | None:
    version = record.get("format_version", 1)
    if as_int(version, 1, 2 ** 31) is None:
        return f"{name}: format_version {quoted(version)} is not a version number"
    return None


def _config_problem(config: dict) -> str | None:
    for key in ("config", "resolved", "model", "versions"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            return f"config.json: {key} is {json_kind(config[key])}, not an object"
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
    if not isinstance(state, str) or not (state in STATES or (newer and _STATE_NAME.fullmatch(state))):
        return f"status.json: state {quoted(state)} is not a run state"
    if status.get("pid") is not None and not is_pid(status["pid"]):
        return f"status.json: pid {quoted(status['pid'])} is not a process id"
    start = status.get("pid_start")
    if start is not None and as_int(start, 0, 2 ** 63 - 1) is None:
        return f"status.json: pid_start {quoted(start)} is not a start time"
    return None


# Why a runs-folder entry that is a symbolic link is not read (see the format docstring).
SYMLINKED_RUN = ("a symbolic link, not a run folder: not read through; Delete removes the link only "
                 "(link the whole runs folder instead)")


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in this folder, or None if it is not a run folder (yet): neither config.json
    nor status.json.

    Never raises for what the folder holds: a folder that cannot be read as the format says
    comes back in state UNREADABLE with the reason in ``problem``.
    """
    return _checked_liveness(_read_records(Path(run_dir)))


def _checked_liveness(info: RunInfo | None) -> RunInfo | None:
    """info (a new RunInfo) as of now: CRASHED if its status names an active state but
    its trainer is gone."""
    if info is None:
        return None
    if info.state not in ACTIVE_STATES:
        return replace(info)
    if not os.path.lexists(info.path / CONFIG_FILE) and not trainer_alive(info.status):
        return replace(info, state=FAILED_TO_START, warning=_last_words(info.path))
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


def _last_words(run_dir: Path) -> str:
    """RunInfo.warning of a run that failed to start: why, as its output says."""
    last = last_output_line(run_dir)
    return (f"The trainer exited before starting the run: {last}" if last else
            "The trainer exited before starting the run and said nothing (no console.log or train.log).")


def _mtime(path: Path) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _read_records(run_dir: Path) -> RunInfo | None:
    """read_run but for the liveness of the trainer: what config.json and status.json say.
    A folder with status.json but no config.json is a run whose trainer has not written its
    config yet (or died before it did: see _checked_liveness); one with neither is none."""
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


def _unstarted(run_dir: Path) -> RunInfo | None:
    """For list_runs, a folder with neither config.json nor status.json: None while it may
    still be a trainer starting (importing, loading data: it writes status.json first), and
    a run FAILED_TO_START once the folder and its console.log have been quiet for STALE_S:
    the trainer refused or died before writing anything but its output. (read_run leaves
    such a folder None: whoever launched into it, a sweep, judges it by its process.)"""
    latest = 0.0
    for path in (run_dir, run_dir / CONSOLE_FILE):
        try:
            latest = max(latest, os.lstat(path).st_mtime)
        except OSError:
            continue
    if time.time() - latest < STALE_S:
        return None
    return RunInfo(path=run_dir, run_id=run_dir.name, state=FAILED_TO_START, warning=_last_words(run_dir))


def remove_stale_temp_files(run_dir: Path, older_than_s: float = 0.0) -> list[Path]:
    """Delete the temp files (``.*.tmp``) that a killed writer left in a run folder and its
    predictions/ folder, if they are at least older_than_s seconds old; returns those
    removed. Call it only for a folder no live trainer writes to: a live trainer's temp file
    is a write in progress."""
    run_dir = Path(run_dir)
    folders = [run_dir]
    predictions = run_dir / PREDICTIONS_DIR
    if predictions.is_dir() and not predictions.is_symlink():  # a link would lead out of the run folder
        folders.append(predictions)
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


@dataclass
class _Listed:
    """What list_runs last read in a run folder: its records' identities, what they say,
    and when the folder's stale temp files were last removed (time.monotonic())."""

    identity: tuple
    records: RunInfo | None
    swept: float | None = None


# list_runs' memory of each folder it listed. Every page of the dashboard lists the runs: with
# 200 runs that took 34 ms (a third of the Analyze page's script run), 2 of them with the
# two records read and parsed again, 0.6 of them sweeping 400 folders for temp files.
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


def _listed(run_dir: Path, now: float) -> RunInfo | None:
    """read_run for list_runs: the records are read again only when one of them changed
    (taken before the read, so a record replaced meanwhile reads again next time); temp
    files are swept at most every STALE_TEMP_AGE_S seconds, or when the records change."""
    identity = (os.path.islink(run_dir), _identity(run_dir / CONFIG_FILE), _identity(run_dir / STATUS_FILE))
    seen = _LISTED.get(run_dir)
    if seen is None or seen.identity != identity or identity[1] is None:
        seen = _LISTED[run_dir] = _Listed(identity, _read_records(run_dir))
    if identity == (False, None, None):  # a real folder with neither record
        return _unstarted(run_dir)
    info = _checked_liveness(seen.records)
    if (info is not None and not info.is_active and info.problem is None and not info.read_only
            and (seen.swept is None or now - seen.swept >= STALE_TEMP_AGE_S)):
        remove_stale_temp_files(info.path, older_than_s=STALE_TEMP_AGE_S)
        seen.swept = now
    return info


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under runs_dir, newest first, unreadable ones included (an entry that is a
    symbolic link to a folder among them, unread: see SYMLINKED_RUN), and folders whose
    trainer never wrote a record, as FAILED_TO_START once quiet for STALE_S (see _unstarted).

    Temp files that a killed writer left behind are removed from runs no live trainer
    writes to (see :func:`remove_stale_temp_files`); read-only and unreadable runs are left
    as they are. The RunInfos share their config and status dicts with the next listing's:
    read them, do not change them.
    """
    runs_dir = Path(runs_dir)
    try:
        folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # no runs folder yet, or one we may not list
        return []
    present = set(folders)
    # Over a copy of the keys (list() of a dict does not let another thread in): each session
    # of the server lists runs in its own thread, and one that adds a folder meanwhile would
    # end this loop with "dictionary changed size during iteration".
    for gone in [p for p in list(_LISTED) if p.parent == runs_dir and p not in present]:
        _LISTED.pop(gone, None)
    now = time.monotonic()
    runs = [r for r in (_listed(p, now) for p in folders) if r is not None]
    return sorted(runs, key=lambda r: (r.config.get("created") or 0, r.run_id), reverse=True)
