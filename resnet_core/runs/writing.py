"""Writing run folders: atomic writes, the one-writer claim and :class:`RunWriter`, the
one writer of a run."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Iterator

import numpy as np

from .data_files import DATA_FILES, data_files_json
from .files import file_kind, named_epochs
from .layout import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    DYNAMICS_DIR,
    DYNAMICS_FILE,
    FORMAT_VERSION,
    HEARTBEAT_S,
    LAST_CHECKPOINT,
    METRICS_FILE,
    SPLITS,
    STATUS_FILE,
    RunFolderError,
    dynamics_images_path,
    dynamics_path,
    prediction_path,
    safe_name,
)
from .metrics_file import read_metrics
from .predictions import recorded_epochs
from .processes import (
    process_start_time,
    this_host,
)
from .records import EpochRow, StatusRecord, StepRow, SystemRow, TestRow
from .cleanup import remove_stale_temps
from .files import read_json


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError inside names `path`, the file meant: not a temp file's name, nor none at
    all, as a write() that meets a full disk reports."""
    try:
        yield
    except OSError as e:
        e.filename, e.filename2 = str(path), None
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    with naming(path):
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
    """A text file opened for appending that is a regular file, never a symlink: a link
    planted in a run folder must not make the trainer write outside it (OSError ELOOP), and
    a FIFO must not block the open until a reader comes (OSError naming it, at once)."""
    # O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of waiting; files ignore it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
        raise OSError(f"{path} is a FIFO, not a regular file: nothing is written there") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(f"{path} is {file_kind(mode)}, not a regular file: nothing is written there")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", buffering=1)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


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


def save_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """An .npz file in a folder of the run folder (predictions/, dynamics/), made if need be,
    written atomically and never through a symbolic link."""
    if path.parent.is_symlink():  # the files would land wherever the link points
        raise RunFolderError(f"{path.parent} is a symbolic link; {path.parent.name} are not written through it")
    path.parent.mkdir(exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_predictions(run_dir: Path, split: str, epoch: int, **arrays: np.ndarray) -> Path:
    return save_arrays(prediction_path(run_dir, split, epoch), **arrays)


def remove_dynamics_after(run_dir: Path, epoch: int) -> None:
    """Remove the dynamics/ epoch files past `epoch` (a resume from its checkpoint records them again)."""
    for e in named_epochs(Path(run_dir) / DYNAMICS_DIR, DYNAMICS_FILE, lambda e: dynamics_path(run_dir, e).name):
        if e > epoch:
            dynamics_path(run_dir, e).unlink()


class RunBusy(Exception):
    """Another process already writes this run folder."""


def claim_run_dir(run_dir: Path) -> int:
    """Take the one-writer claim on a run folder: an exclusive flock on the folder itself
    (no file is created), held until the returned descriptor is closed or the process
    ends, so two trainers (say, two resumes clicked at once) never write the same run."""
    return exclusive_claim(os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY),
                           RunBusy(f"{run_dir} is being written by another trainer"))


def exclusive_claim(fd: int, busy: Exception) -> int:
    """fd with an exclusive flock on it, or fd closed and `busy` raised when another
    process holds one: a claim that lasts as long as the descriptor or the process."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise busy from None
    return fd


def run_dir_busy(run_dir: Path) -> bool:
    """Whether a trainer holds run_dir's claim (claim_run_dir) now. The test takes the claim
    for an instant: a trainer claiming at that very instant is refused and exits, so call
    this only on folders no trainer is about to start in (an earlier sweep's points)."""
    try:
        os.close(claim_run_dir(run_dir))
    except RunBusy:
        return True
    except OSError:  # gone, or not a folder: nobody writes it
        return False
    return False


def truncate_to_checkpoint(run_dir: Path, step: int, epoch: int) -> None:
    """Keep only the metric rows a checkpoint at (step, epoch) covers, and drop the
    prediction and dynamics files of later epochs: the history a resume continues without
    duplicates."""
    rows = read_metrics(run_dir)  # rows whose step and epoch are whole numbers
    kept = [r for r in rows if (r.get("type") in ("step", "system") and r.get("step", 0) <= step)
            or (r.get("type") == "epoch" and r["epoch"] <= epoch)]
    if len(kept) != len(rows) or os.path.lexists(Path(run_dir) / METRICS_FILE):
        atomic_write_bytes(Path(run_dir) / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept).encode())
    for split in SPLITS:
        for e in recorded_epochs(run_dir, split):
            if e > epoch:
                prediction_path(run_dir, split, e).unlink()
    remove_dynamics_after(run_dir, epoch)


class RunWriter:
    """The one writer of a run folder: status.json, config.json, metrics.jsonl, predictions,
    dynamics and checkpoint files, each written as :mod:`resnet_core.runs.folder_format`
    says (atomically, never through a symlink). The trainer holds one per run; nothing else
    writes these files (the dashboard writes only its own: annotations.json, features/)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        # On a resume both records exist already: keep what they say.
        self.status: StatusRecord = read_json(self.run_dir / STATUS_FILE) or {}
        self.config: dict = read_json(self.run_dir / CONFIG_FILE) or {}
        self.pid_start = process_start_time(os.getpid())  # tells readers our pid from a later process's
        self.metrics = None  # metrics.jsonl, open for appending from start_metrics on
        self.metrics_lock = threading.Lock()
        self.status_lock = threading.Lock()  # the training loop and the heartbeat thread
        self.host = this_host()
        # Maintenance at a writer's step, not a reader's: temp files that killed writers left
        # in the runs beside this one (see cleanup.remove_stale_temps).
        remove_stale_temps(self.run_dir.parent)

    def set_status(self, **changes) -> None:
        with self.status_lock:
            self.status.update(changes, format_version=FORMAT_VERSION, pid=os.getpid(), pid_start=self.pid_start,
                               host=self.host, updated_at=time.time())
            atomic_write_json(self.run_dir / STATUS_FILE, self.status)

    def heartbeat(self) -> None:
        """Rewrite status.json if HEARTBEAT_S passed without a change, so that readers on
        other machines, which cannot look up this pid, still see a live trainer."""
        if time.time() - (self.status.get("updated_at") or 0.0) >= HEARTBEAT_S:
            self.set_status()

    @contextlib.contextmanager
    def heartbeats(self) -> Iterator[None]:
        """Inside: a thread calls :meth:`heartbeat` every HEARTBEAT_S / 2, whatever the run
        does (waiting in the queue, a long evaluation, rows only every --log-seconds, which
        may be longer than STALE_S). It ends on leaving, so a run that stops without a final
        state goes quiet and reads as crashed."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_S / 2):
                try:
                    self.heartbeat()
                except OSError:  # the run's own next write meets it too, and ends the run in one line
                    pass

        thread = threading.Thread(target=beat, name="status-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

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

    def append_metrics(self, row: StepRow | EpochRow | TestRow | SystemRow) -> None:
        line = json.dumps({**row, "time": time.time()}) + "\n"
        with self.metrics_lock, naming(self.run_dir / METRICS_FILE):  # the loop and the usage recorder append
            self.metrics.write(line)
            self.metrics.flush()

    def save_predictions(self, split: str, epoch: int, **arrays: np.ndarray) -> Path:
        return save_predictions(self.run_dir, split, epoch, **arrays)

    def save_training_images(self, indices: np.ndarray, labels: np.ndarray, original_labels: np.ndarray) -> Path:
        """dynamics/train_images.npz: the training images every epoch's record is aligned with."""
        return save_arrays(dynamics_images_path(self.run_dir), indices=np.asarray(indices, dtype=np.int64),
                           labels=np.asarray(labels, dtype=np.int64),
                           original_labels=np.asarray(original_labels, dtype=np.int64))

    def save_dynamics(self, epoch: int, label_prob: np.ndarray, correct: np.ndarray) -> Path:
        """dynamics/train_epoch_NNN.npz from an epoch's record: label_prob (N, NaN where not
        presented) stored as float16, correct (N bools) as numpy.packbits' bytes."""
        return save_arrays(dynamics_path(self.run_dir, epoch), label_prob=np.asarray(label_prob, dtype=np.float16),
                           correct=np.packbits(np.asarray(correct, dtype=bool)))

    def save_data_files(self, train: Sequence[str], test: Sequence[str]) -> None:
        """data_files.json: each image's file, relative to the data folder, in the order of the
        training and test sets' arrays (for data read from files; CIFAR's batches have none)."""
        atomic_write_bytes(self.run_dir / DATA_FILES, data_files_json(train, test))

    def write_checkpoint(self, data: bytes, *, last: bool = True, best: bool = False) -> None:
        """last.pt and/or best.pt, the same bytes; last.pt first (see :mod:`resnet_core.runs.folder_format`)."""
        if last:
            atomic_write_bytes(self.run_dir / LAST_CHECKPOINT, data)
        if best:
            atomic_write_bytes(self.run_dir / BEST_CHECKPOINT, data)


class PeerWriter(RunWriter):
    """What a rank other than 0 of a distributed run holds instead of a RunWriter: the same
    calls, kept in memory, nothing written (rank 0 alone writes the run folder)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.status, self.config = {}, {}
        self.metrics_lock = threading.Lock()

    def set_status(self, **changes) -> None:
        self.status.update(changes)

    def heartbeats(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # rank 0 keeps the folder's status alive

    def write_config(self, new_record: dict, **resolved) -> None:
        self.config = self.config or dict(new_record)
        self.config.setdefault("resolved", {}).update(resolved)

    def start_metrics(self, step: int, epoch: int) -> None:
        pass

    def append_metrics(self, row) -> None:
        pass

    def save_predictions(self, split: str, epoch: int, **arrays: np.ndarray) -> None:
        return None

    def save_training_images(self, indices: np.ndarray, labels: np.ndarray, original_labels: np.ndarray) -> None:
        return None

    def save_dynamics(self, epoch: int, label_prob: np.ndarray, correct: np.ndarray) -> None:
        return None

    def save_data_files(self, train: Sequence[str], test: Sequence[str]) -> None:
        pass

    def write_checkpoint(self, data: bytes, *, last: bool = True, best: bool = False) -> None:
        pass
