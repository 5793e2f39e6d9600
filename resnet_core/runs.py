"""The run folder: the one contract between the trainer and everything that reads runs.

The trainer (``python -m resnet_core.train``) writes one folder per run and nothing else;
the dashboard only launches trainers, sends them signals and reads these folders. This
docstring is the format's only definition. Change it only together with FORMAT_VERSION.

Format version 2
================

Readers also read version 1 folders, which differ in one way that matters: there
``val_size`` 0 made the test set stand in for validation (``val_source`` ``"test"``,
``val`` predictions pointing into the test set, and ``best.pt`` chosen on it). The
trainer resumes only folders of its own version, so no folder mixes two.

``<runs-dir>/<run-id>/`` (run-id: ``YYYYmmdd-HHMMSS-<name>``, name sanitised by
:func:`safe_name`) holds:

``config.json``
    Written at the start, right after status.json, and completed once the data and
    model are known (sizes, classes, model); a resume keeps the original settings:
    ``format_version``, ``run_id``, ``created``, ``config`` (every TrainConfig field
    actually used, presets and block-dependent defaults already applied), ``resolved``
    (``device``, ``device_name``, ``precision`` (of training steps; evaluation is always
    fp32), ``channels_last``, ``compile``, ``steps_per_epoch``, ``total_steps``,
    ``max_steps`` (0, or the step at which the run stops, mid-epoch if need be),
    ``train_size``, ``val_size``, ``test_size``, ``val_source`` = ``"train"`` (a split
    carved from the training set; val indices point into the training set) or null (no
    validation split), ``test_every_epoch`` (true exactly when there is no validation
    split: the test set is then evaluated after every epoch for monitoring only, never to
    choose a checkpoint), ``data_dir`` (absolute path of the data folder read) and
    ``normalization`` (``mean``, ``std``: per-channel fractions of 255, and ``images``:
    computed from exactly the training split's images)), ``classes`` (class names),
    ``model`` (name, params, macs) and ``versions`` (python, torch, torchvision, numpy,
    resnet_core).

``status.json``
    Written before ``config.json`` exists, then replaced atomically (temp file +
    ``os.replace``) on every change of state, step row and epoch: ``format_version``,
    ``state``, ``pid``, ``pid_start`` (the trainer's start time as the kernel gives it:
    field 22 of ``/proc/<pid>/stat``, clock ticks since boot; null where unknown),
    ``epoch`` (completed epochs), ``step`` (optimizer steps taken),
    ``total_epochs``, ``total_steps``, ``created_at``, ``started_at``, ``updated_at``,
    ``finished_at`` (unix seconds or null; ``started_at`` is the latest session's),
    ``elapsed_before_s`` (seconds the earlier sessions of a resumed run took),
    ``best_val_acc`` and ``best_epoch`` (null without a validation split or before the
    first epoch), ``test_acc`` (of the final weights, after the final test evaluation)
    and ``error`` (message for ``failed`` and ``diverged``, else null). ``state`` is one
    of: ``queued`` (waiting for the device lock, see :func:`device_lock_path`),
    ``running``, ``completed``, ``stopped`` (SIGTERM/SIGINT: the current step finished
    and ``last.pt`` saved), ``failed`` (an exception), ``diverged`` (a non-finite loss).
    A reader that finds ``queued`` or ``running`` while that trainer is gone reports
    ``crashed`` (see :func:`read_run`): the trainer was killed. The pid is trusted only
    while a process with it runs, is no zombie and has the recorded ``pid_start``
    (without one, as in version 1: its command line runs ``resnet_core.train``), so a
    reused pid never makes a run look alive and Stop never signals another process.

``metrics.jsonl``
    One JSON object a line, appended and flushed as training goes. Step rows every few
    steps: ``{"type": "step", "epoch", "step", "loss", "acc", "lr", "images_per_s",
    "time"}`` where ``epoch`` is the 1-based epoch in progress and loss/acc average the
    steps since the previous step row. Epoch rows at the end of each epoch:
    ``{"type": "epoch", "epoch", "step", "train_loss", "train_acc", "val_loss",
    "val_acc", "lr", "epoch_seconds", "images_per_s", "peak_memory_mb", "time"}``, with
    ``val_loss``/``val_acc`` null without a validation split and, when
    ``test_every_epoch``, also ``test_loss`` and ``test_acc`` (monitoring only).
    Accuracies are fractions in [0, 1]. A final ``{"type": "test", "epoch", "step",
    "test_loss", "test_acc", "time"}`` row follows the test evaluation of the final
    weights. On resume the trainer truncates this file to the rows its checkpoint
    covers, so no row is duplicated.

``last.pt`` / ``best.pt``
    ``torch.save`` of a plain dict (loadable with ``weights_only=True``), written to a
    fresh temp file and renamed (a symlink at the name is replaced, never followed):
    ``format_version``, ``model``, ``optimizer`` and ``scaler`` state dicts,
    ``schedule`` (the step and the schedule's settings), ``rng`` (``torch``: the CPU
    generator; ``cuda``: the CUDA generators, or an empty list), ``epoch`` (completed
    epochs), ``step``, ``best_val_acc`` (-1.0 before any validation), ``best_epoch`` (0
    likewise), and ``partial_epoch`` (null, or for a graceful stop mid-epoch:
    ``{"epoch", "batch", "sums", "seconds"}``, the epoch's position and running sums;
    the data order and augmentation are recomputed from (seed, epoch, batch), so a
    resume continues exactly). ``last.pt`` is written after every epoch and on a
    graceful stop; ``best.pt`` (only with a validation split) right after ``last.pt``
    with the same bytes when the validation accuracy improves, so it always holds
    ``best_epoch``; a resume restores it from ``last.pt`` if a kill fell between the two.

``predictions/{split}_epoch_{NNN}.npz`` (epoch 1-based, three digits)
    ``split`` ``val`` after every epoch (with a validation split), ``test`` after every
    epoch when ``test_every_epoch`` and otherwise once at the end (the final weights):
    arrays ``indices`` (int64, index of each image in its source set, see
    ``val_source``), ``labels`` (int64), ``preds`` (int64), ``topk_classes`` (int64,
    N x k, best first), ``topk_probs`` (float32, N x k), ``loss`` (float32), all from
    fp32 evaluation. ``split`` ``train``: only ``confusion`` (int64, C x C, rows = true
    class, columns = predicted class), accumulated over the epoch's augmented batches.

``train.log``
    The trainer's log, with the traceback of a ``failed`` run. ``console.log``: stdout
    and stderr of a trainer launched by the dashboard (a refusal before the run starts
    lands there as one line).

Temporary files ``.*.tmp`` (in the folder or ``predictions/``) are atomic writes that a
kill interrupted: the trainer deletes them when it resumes, and :func:`list_runs` for
runs that are not active, not unreadable and not read-only, once they are a minute old.

Reading never raises
--------------------
Readers open run files without following symlinks. A folder whose config.json or
status.json cannot be read as this format says (not UTF-8 or not JSON, not a JSON
object, over 1 MiB, a folder, FIFO or symlink, a section that is not an object, classes
that are not a list of strings, a ``created`` that is not a number, an unknown state, a
pid that is not an int in 1..2**31-1, a ``pid_start`` that is not an int >= 0, a
``format_version`` that is not an int >= 1) reads with the derived state ``unreadable``
and a one-line :attr:`RunInfo.problem`: it is listed, never resumed, and can be deleted.
A folder whose ``format_version`` is above FORMAT_VERSION is ``read_only``: shown with
:attr:`RunInfo.note`, never resumed into or cleaned; one of an older version reads
normally, with a note, and is not resumed either. metrics.jsonl lines that are not
objects, and rows whose ``epoch`` or ``step`` is not an int, are skipped;
:func:`load_predictions` raises :class:`RunFolderError` for a missing, damaged or
inconsistent file.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import io
import json
import math
import os
import re
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Mapping, TypedDict

import numpy as np

FORMAT_VERSION = 2
ACTIVE_STATES = ("queued", "running")
CRASHED = "crashed"  # derived by readers, never written
UNREADABLE = "unreadable"  # derived by readers, never written: RunInfo.problem says why
RESUMABLE_STATES = ("stopped", "failed", CRASHED)
SPLITS = ("val", "train", "test")
TRAINER_MODULE = "resnet_core.train"

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
LOG_FILE = "train.log"
CONSOLE_FILE = "console.log"
PREDICTIONS_DIR = "predictions"

_PREDICTION_FILE = re.compile(r"^(val|train|test)_epoch_(\d{3,})\.npz$")
TEMP_FILES = ".*.tmp"  # what atomic writes leave behind when the writer is killed mid-write
# list_runs leaves younger temp files alone: a trainer just resumed into a folder whose
# status.json still says "stopped" may be writing one.
STALE_TEMP_AGE_S = 60.0
MAX_JSON_BYTES = 1 << 20  # config.json and status.json are a few KB; a page rereads them every second
_MAX_PID = 2 ** 31 - 1  # pid_t is 32-bit: os.kill and os.waitpid raise OverflowError above it
_STATE_NAME = re.compile(r"[a-z][a-z_-]{0,31}")


class RunFolderError(ValueError):
    """A file of a run folder that cannot be read as the format says; the message says why,
    in one line (e.g. "status.json holds a list, not a JSON object",
    "predictions/val_epoch_001.npz: labels holds class 12, outside 0..9")."""


# ---------------------------------------------------------------------------- writing

def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; run files are for every reader
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_for_append(path: Path):
    """A text file opened for appending that is never a symlink: a link planted in a run
    folder must not make the trainer write outside it (OSError ELOOP instead)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "a", buffering=1)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def safe_name(name: str, max_len: int = 48) -> str:
    """A run name reduced to letters, digits, '-', '_' and '.', never a path."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return cleaned[:max_len].rstrip("-.")


def new_run_dir(runs_dir: Path, name: str = "") -> Path:
    """Create and return a fresh run folder; the id sorts by creation time."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{safe_name(name)}" if safe_name(name) else stamp
    for i in range(1000):
        candidate = runs_dir / (base if i == 0 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder under {runs_dir}")


def prediction_path(run_dir: Path, split: str, epoch: int) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{split}_epoch_{epoch:03d}.npz"


def save_predictions(run_dir: Path, split: str, epoch: int, **arrays: np.ndarray) -> Path:
    path = prediction_path(run_dir, split, epoch)
    if path.parent.is_symlink():  # the files would land wherever the link points
        raise RunFolderError(f"{path.parent} is a symbolic link; predictions are not written through it")
    path.parent.mkdir(exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


class RunBusy(Exception):
    """Another process already writes this run folder."""


def claim_run_dir(run_dir: Path) -> int:
    """Take the one-writer claim on a run folder: an exclusive flock on the folder itself
    (no file is created), held until the returned descriptor is closed or the process
    ends, so two trainers (say, two resumes clicked at once) never write the same run."""
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunBusy(f"{run_dir} is being written by another trainer") from None
    return fd


def truncate_to_checkpoint(run_dir: Path, step: int, epoch: int) -> None:
    """Keep only the metric rows a checkpoint at (step, epoch) covers, and drop the
    prediction files of later epochs: the history a resume continues without duplicates."""
    rows = read_metrics(run_dir)  # rows whose step and epoch are whole numbers
    kept = [r for r in rows if (r.get("type") == "step" and r["step"] <= step)
            or (r.get("type") == "epoch" and r["epoch"] <= epoch)]
    if len(kept) != len(rows) or os.path.lexists(Path(run_dir) / METRICS_FILE):
        atomic_write_bytes(Path(run_dir) / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept).encode())
    for split in SPLITS:
        for e in recorded_epochs(run_dir, split):
            if e > epoch:
                prediction_path(run_dir, split, e).unlink()


class StatusRecord(TypedDict, total=False):
    """status.json, as documented above."""

    format_version: int
    state: str
    pid: int
    pid_start: int | None
    epoch: int
    step: int
    total_epochs: int
    total_steps: int
    created_at: float
    started_at: float | None
    updated_at: float
    finished_at: float | None
    elapsed_before_s: float
    best_val_acc: float | None
    best_epoch: int | None
    test_acc: float | None
    error: str | None


class StepRow(TypedDict):
    type: str  # "step"
    epoch: int
    step: int
    loss: float
    acc: float
    lr: float
    images_per_s: float


class EpochRow(TypedDict, total=False):
    type: str  # "epoch"
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    epoch_seconds: float
    images_per_s: float
    peak_memory_mb: float
    test_loss: float  # only with test_every_epoch
    test_acc: float


class TestRow(TypedDict):
    type: str  # "test"
    epoch: int
    step: int
    test_loss: float
    test_acc: float


class RunWriter:
    """The one writer of a run folder: status.json, config.json, metrics.jsonl, predictions
    and checkpoint files, each written as the format above says (atomically, never through
    a symlink). The trainer holds one per run; nothing else writes a run folder."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        # On a resume both records exist already: keep what they say.
        self.status: StatusRecord = read_json(self.run_dir / STATUS_FILE) or {}
        self.config: dict = read_json(self.run_dir / CONFIG_FILE) or {}
        self.pid_start = process_start_time(os.getpid())  # tells readers our pid from a later process's
        self.metrics = None  # metrics.jsonl, open for appending from start_metrics on

    def set_status(self, **changes) -> None:
        self.status.update(changes, format_version=FORMAT_VERSION, pid=os.getpid(), pid_start=self.pid_start,
                           updated_at=time.time())
        atomic_write_json(self.run_dir / STATUS_FILE, self.status)

    def write_config(self, new_record: dict, **resolved) -> None:
        """config.json: new_record unless the folder has one (a resume keeps its settings),
        with these ``resolved`` fields added."""
        self.config = self.config or {"format_version": FORMAT_VERSION, **new_record}
        self.config.setdefault("resolved", {}).update(resolved)
        atomic_write_json(self.run_dir / CONFIG_FILE, self.config)

    def start_metrics(self, step: int, epoch: int) -> None:
        """Cut the history back to a checkpoint at (step, epoch), then append from there."""
        truncate_to_checkpoint(self.run_dir, step, epoch)
        self.metrics = open_for_append(self.run_dir / METRICS_FILE)

    def append_metrics(self, row: StepRow | EpochRow | TestRow) -> None:
        self.metrics.write(json.dumps({**row, "time": time.time()}) + "\n")
        self.metrics.flush()

    def save_predictions(self, split: str, epoch: int, **arrays: np.ndarray) -> Path:
        return save_predictions(self.run_dir, split, epoch, **arrays)

    def write_checkpoint(self, data: bytes, *, last: bool = True, best: bool = False) -> None:
        """last.pt and/or best.pt, the same bytes; last.pt first (see the format above)."""
        if last:
            atomic_write_bytes(self.run_dir / LAST_CHECKPOINT, data)
        if best:
            atomic_write_bytes(self.run_dir / BEST_CHECKPOINT, data)


def device_lock_path(runs_dir: Path, device: str) -> Path:
    """The file a trainer holds an exclusive flock on while it uses a device.

    A second trainer for the same device waits on it in state ``queued``; the lock goes
    away with the process, so a killed trainer never blocks the queue.
    """
    return Path(runs_dir) / f".device-{safe_name(device.replace(':', '-'))}.lock"


# ---------------------------------------------------------------------------- reading

def open_run_file(run_dir: Path, name: str) -> BinaryIO:
    """Open a regular file of a run folder for reading; name is relative to run_dir
    ("status.json", "predictions/val_epoch_001.npz").

    No symbolic link below run_dir is followed, so a link planted in a run folder cannot
    make the dashboard show some other file, and a FIFO cannot hang a page. Raises
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
        flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
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


def _kind(value: Any) -> str:
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


def _read_json_object(run_dir: Path, name: str) -> dict:
    """The JSON object in a run folder's file; FileNotFoundError when it is missing,
    RunFolderError for anything else that is not a JSON object."""
    with open_run_file(run_dir, name) as f:
        try:
            data = f.read(MAX_JSON_BYTES + 1)
        except OSError as e:
            raise RunFolderError(f"{name} cannot be read ({e.strerror or e})") from e
    if len(data) > MAX_JSON_BYTES:
        raise RunFolderError(f"{name} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFolderError(f"{name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{name} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise RunFolderError(f"{name} is nested too deeply to read") from None
    if not isinstance(obj, dict):
        raise RunFolderError(f"{name} holds {_kind(obj)}, not a JSON object")
    return obj


def read_json(path: Path) -> dict | None:
    """The JSON object in a run folder's file, or None when it is missing or is not one."""
    path = Path(path)
    try:
        return _read_json_object(path.parent, path.name)
    except (OSError, RunFolderError):
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pid(value: Any) -> bool:
    return _is_int(value) and 0 < value <= _MAX_PID


def _ps_command(pid: int) -> str:
    """The command line of pid as ps prints it; "" when ps cannot say."""
    try:
        return subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                              timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _has_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat from field 3 (the state) on, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Field 2, the command name in parentheses, may itself hold spaces and ')'.
    return data.rpartition(b")")[2].split()


def process_start_time(pid: Any) -> int | None:
    """When a process started, as the kernel reports it (Linux: field 22 of /proc/<pid>/stat,
    clock ticks since boot), or None where unknown. Together with the pid it names one
    process: a later process that reuses the pid has another start time."""
    if not _is_pid(pid):
        return None
    fields = _proc_stat(pid)
    try:
        return int(fields[19])
    except (TypeError, IndexError, ValueError):
        return None


def pid_alive(pid: Any) -> bool:
    """True if a process with this pid runs and is not a zombie (an exited child of ours).
    Anything but a plausible pid (a string, a bool, 0, a negative or huge number) is not alive."""
    if not _is_pid(pid):
        return False
    try:
        # Reap it if it is our own exited child; otherwise this raises ChildProcessError.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    if _has_proc():
        fields = _proc_stat(pid)
        return bool(fields) and fields[0] not in (b"Z", b"X")
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def trainer_alive(status: Mapping) -> bool:
    """True if the trainer that status.json names (``pid``, ``pid_start``) still runs.

    The pid must be alive and not a zombie; where /proc exists, the process must also have
    the recorded start time, or, where none is recorded (format 1), have
    ``resnet_core.train`` on its command line. A pid the system gave to another process
    after the trainer died therefore never makes a run look alive.
    """
    pid = status.get("pid")
    if not pid_alive(pid):
        return False
    if not _has_proc():  # macOS: no start times to compare, but ps shows the command line
        return TRAINER_MODULE in _ps_command(pid)
    start = status.get("pid_start")
    if _is_int(start):
        return process_start_time(pid) == start
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return TRAINER_MODULE.encode() in f.read()
    except OSError:
        return False


class State(str, Enum):
    """A run's state: the six that status.json holds, and two that readers derive. Members
    equal their plain strings (``State.RUNNING == "running"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"
    CRASHED = CRASHED  # derived by readers, never written
    UNREADABLE = UNREADABLE  # derived by readers, never written

    def __str__(self) -> str:
        return self.value


STATES = tuple(s.value for s in State if s not in (State.CRASHED, State.UNREADABLE))  # what status.json may say


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
    state: str  # a written state, "crashed" or "unreadable"
    config: dict = field(default_factory=dict)  # {} when unreadable
    status: dict = field(default_factory=dict)  # {} when status.json is missing or unreadable
    problem: str | None = None  # why the folder is unreadable (one line), else None
    note: str | None = None  # set when the folder's format is not FORMAT_VERSION: why it is not resumed
    read_only: bool = False  # written in a newer format: shown, never resumed into or cleaned up

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def can_resume(self) -> bool:
        return (self.state in RESUMABLE_STATES and self.note is None
                and (self.path / LAST_CHECKPOINT).exists())

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
    def model_name(self) -> str:
        """The recorded model name, else "ResNet-<depth>" from the config, else ""; a value
        that is not a string shows as its repr."""
        name = _record(self.config, "model").get("name")
        if name is not None and name != "":
            return _as_text(name)
        depth = self.train_config.get("depth")
        return "" if depth is None or depth == "" else f"ResNet-{_as_text(depth)}"

    @property
    def classes(self) -> list[str]:
        """The class names config.json records, in label order; [] when there are none."""
        classes = self.config.get("classes") if isinstance(self.config, dict) else None
        return [_as_text(c) for c in classes] if isinstance(classes, list) else []


def _finite(value: Any) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _version_problem(name: str, record: dict) -> str | None:
    version = record.get("format_version", 1)
    if not _is_int(version) or version < 1:
        return f"{name}: format_version {_short(version)} is not a version number"
    return None


def _config_problem(config: dict) -> str | None:
    for key in ("config", "resolved", "model", "versions"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            return f"config.json: {key} is {_kind(config[key])}, not an object"
    classes = config.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return "config.json: classes is not a list of names"
    if config.get("created") is not None and not _finite(config["created"]):
        return f"config.json: created {_short(config['created'])} is not a time"
    return None


def _status_problem(status: dict, newer: bool) -> str | None:
    state = status.get("state", "queued")
    # A newer format may add states; it must still name them plainly.
    if not isinstance(state, str) or not (state in STATES or (newer and _STATE_NAME.fullmatch(state))):
        return f"status.json: state {_short(state)} is not a run state"
    if status.get("pid") is not None and not _is_pid(status["pid"]):
        return f"status.json: pid {_short(status['pid'])} is not a process id"
    start = status.get("pid_start")
    if start is not None and not (_is_int(start) and start >= 0):
        return f"status.json: pid_start {_short(start)} is not a start time"
    return None


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in this folder, or None if it is not a run folder (no config.json yet).

    Never raises for what the folder holds: a folder that cannot be read as the format says
    comes back in state UNREADABLE with the reason in ``problem``.
    """
    run_dir = Path(run_dir)
    config_problem = status_problem = None
    try:
        config = _read_json_object(run_dir, CONFIG_FILE)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except RunFolderError as e:
        config, config_problem = {}, str(e)
    try:
        status = _read_json_object(run_dir, STATUS_FILE)
    except FileNotFoundError:
        status = {}
    except RunFolderError as e:
        status, status_problem = {}, str(e)
    config_problem = config_problem or _version_problem("config.json", config)
    status_problem = status_problem or _version_problem("status.json", status)
    versions = [config.get("format_version", 1)] + ([status.get("format_version", 1)] if status else [])
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
    state = status.get("state", "queued")
    if state in ACTIVE_STATES and not trainer_alive(status):
        state = CRASHED
    return RunInfo(path=run_dir, run_id=run_dir.name, state=state, config=config, status=status,
                   note=note, read_only=newer)


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


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under runs_dir, newest first, unreadable ones included.

    Temp files that a killed writer left behind are removed from runs no live trainer
    writes to (see :func:`remove_stale_temp_files`); read-only and unreadable runs are left
    as they are.
    """
    runs_dir = Path(runs_dir)
    try:
        folders = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # no runs folder yet, or one we may not list
        return []
    runs = [r for r in map(read_run, folders) if r is not None]
    for r in runs:
        if not r.is_active and r.problem is None and not r.read_only:
            remove_stale_temp_files(r.path, older_than_s=STALE_TEMP_AGE_S)
    return sorted(runs, key=lambda r: (r.config.get("created") or 0, r.run_id), reverse=True)


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
            if (key == kind or key in row) and not (_is_int(row.get(key)) and 0 <= row[key] <= 2 ** 53):
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


def recorded_epochs(run_dir: Path, split: str) -> list[int]:
    """Epochs for which predictions (val, test) or a confusion matrix (train) were saved."""
    folder = Path(run_dir) / PREDICTIONS_DIR
    if folder.is_symlink():
        return []  # load_predictions would not follow it either
    try:
        names = os.listdir(folder)
    except OSError:  # none yet, or not a folder
        return []
    epochs = []
    for name in names:
        m = _PREDICTION_FILE.match(name)
        if m and m.group(1) == split:
            epochs.append(int(m.group(2)))
    return sorted(epochs)


_INT_ARRAYS = ("indices", "labels", "preds", "topk_classes")
_FLOAT_ARRAYS = ("topk_probs", "loss")


def _check_predictions(arrays: dict[str, np.ndarray], split: str, num_classes: int) -> str | None:
    """What is wrong with a predictions file's arrays for a run of num_classes classes, or None."""
    needed = ("confusion",) if split == "train" else _INT_ARRAYS + _FLOAT_ARRAYS
    missing = [k for k in needed if k not in arrays]
    if missing:
        return f"has no {', '.join(missing)}"
    for k in needed:
        kind = "f" if k in _FLOAT_ARRAYS else "iu"
        if arrays[k].dtype.kind not in kind:
            return f"{k} holds {arrays[k].dtype}, not {'floats' if kind == 'f' else 'integers'}"
    if split == "train":
        cm = arrays["confusion"]
        if cm.shape != (num_classes, num_classes):
            return f"confusion is {'x'.join(map(str, cm.shape)) or 'a scalar'}, not {num_classes}x{num_classes}"
        return "confusion holds negative counts" if (cm < 0).any() else None
    if arrays["labels"].ndim != 1:
        return f"labels has shape {arrays['labels'].shape}, not (N,)"
    n = len(arrays["labels"])
    for k in ("indices", "preds", "loss"):
        if arrays[k].shape != (n,):
            return f"{k} has shape {arrays[k].shape}, not ({n},) like labels"
    for k in ("topk_classes", "topk_probs"):
        a = arrays[k]
        if a.ndim != 2 or a.shape[0] != n or not 1 <= a.shape[1] <= num_classes:
            return f"{k} has shape {a.shape}, not ({n}, k) with 1 <= k <= {num_classes}"
    if arrays["topk_classes"].shape != arrays["topk_probs"].shape:
        return "topk_classes and topk_probs differ in shape"
    for k in ("labels", "preds", "topk_classes"):
        a = arrays[k]
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            bad = a.min() if a.min() < 0 else a.max()
            return f"{k} holds class {bad}, outside 0..{num_classes - 1}"
    if arrays["indices"].size and arrays["indices"].min() < 0:
        return "indices hold a negative index"
    return None


def load_predictions(run_dir: Path, split: str, epoch: int, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays saved for a split and epoch (see the format above), checked: every
    documented array present, with the documented kind of values and shapes, and classes in
    0..num_classes-1 (default: the number of classes the run's config.json lists).

    Raises RunFolderError, with a one-line message, for a file that is missing, damaged or
    inconsistent, or when the run's classes are unknown.
    """
    run_dir = Path(run_dir)
    name = f"{PREDICTIONS_DIR}/{prediction_path(run_dir, split, epoch).name}"
    if num_classes is None:
        try:
            classes = _read_json_object(run_dir, CONFIG_FILE).get("classes")
        except OSError as e:
            raise RunFolderError(f"{CONFIG_FILE} cannot be read ({e.strerror or e})") from e
        if not isinstance(classes, list) or not classes:
            raise RunFolderError(f"{CONFIG_FILE} lists no classes to check {name} against")
        num_classes = len(classes)
    try:
        with open_run_file(run_dir, name) as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise RunFolderError(f"{name} holds a single array, not an .npz archive")
            with npz:
                arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise RunFolderError(f"{name} does not exist") from None
    except RunFolderError:
        raise
    except Exception as e:  # np.load fails on a damaged file in many ways (BadZipFile, ValueError,
        # EOFError, zlib.error, OSError...); to a reader each is the same damaged file
        detail = " ".join(str(e).split())[:80]
        raise RunFolderError(f"{name} cannot be read ({type(e).__name__}: {detail})") from e
    problem = _check_predictions(arrays, split, num_classes)
    if problem:
        raise RunFolderError(f"{name}: {problem}")
    return arrays
