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
    ``state``, ``pid``, ``epoch`` (completed epochs), ``step`` (optimizer steps taken),
    ``total_epochs``, ``total_steps``, ``created_at``, ``started_at``, ``updated_at``,
    ``finished_at`` (unix seconds or null; ``started_at`` is the latest session's),
    ``elapsed_before_s`` (seconds the earlier sessions of a resumed run took),
    ``best_val_acc`` and ``best_epoch`` (null without a validation split or before the
    first epoch), ``test_acc`` (of the final weights, after the final test evaluation)
    and ``error`` (message for ``failed`` and ``diverged``, else null). ``state`` is one
    of: ``queued`` (waiting for the device lock, see :func:`device_lock_path`),
    ``running``, ``completed``, ``stopped`` (SIGTERM/SIGINT: the current step finished
    and ``last.pt`` saved), ``failed`` (an exception), ``diverged`` (a non-finite loss).
    A reader that finds ``queued`` or ``running`` while the pid is gone reports
    ``crashed`` (see :func:`read_run`): the trainer was killed.

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
    The trainer's log. ``console.log``: stdout and stderr of a trainer launched by the
    dashboard (tracebacks from before logging starts land there).
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 2
STATES = ("queued", "running", "completed", "stopped", "failed", "diverged")
ACTIVE_STATES = ("queued", "running")
CRASHED = "crashed"  # derived by readers, never written
RESUMABLE_STATES = ("stopped", "failed", CRASHED)
SPLITS = ("val", "train", "test")

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
LOG_FILE = "train.log"
CONSOLE_FILE = "console.log"
PREDICTIONS_DIR = "predictions"

_PREDICTION_FILE = re.compile(r"^(val|train|test)_epoch_(\d{3,})\.npz$")


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
    path.parent.mkdir(exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def device_lock_path(runs_dir: Path, device: str) -> Path:
    """The file a trainer holds an exclusive flock on while it uses a device.

    A second trainer for the same device waits on it in state ``queued``; the lock goes
    away with the process, so a killed trainer never blocks the queue.
    """
    return Path(runs_dir) / f".device-{safe_name(device.replace(':', '-'))}.lock"


# ---------------------------------------------------------------------------- reading

def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def pid_alive(pid: int | None) -> bool:
    """True if a process with this pid runs and is not a zombie (an exited child of ours)."""
    if not pid:
        return False
    try:
        # Reap it if it is our own exited child; otherwise this raises ChildProcessError.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


@dataclass
class RunInfo:
    """What a reader knows about one run folder."""

    path: Path
    run_id: str
    state: str  # a written state, or "crashed"
    config: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def can_resume(self) -> bool:
        return self.state in RESUMABLE_STATES and (self.path / LAST_CHECKPOINT).exists()


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in this folder, or None if it is not a run folder (no config.json yet)."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / CONFIG_FILE)
    if config is None:
        return None
    status = read_json(run_dir / STATUS_FILE) or {}
    state = status.get("state", "queued")
    if state in ACTIVE_STATES and not pid_alive(status.get("pid")):
        state = CRASHED
    return RunInfo(path=run_dir, run_id=run_dir.name, state=state, config=config, status=status)


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run under runs_dir, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [read_run(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    runs = [r for r in runs if r is not None]
    return sorted(runs, key=lambda r: (r.config.get("created", 0), r.run_id), reverse=True)


def read_metrics(run_dir: Path) -> list[dict]:
    """All complete rows of metrics.jsonl (a half-written last line is left out)."""
    rows, _, _ = read_metrics_since(run_dir, None)
    return rows


@dataclass(frozen=True)
class MetricsCursor:
    """Where the last read of metrics.jsonl stopped: the file's inode and a byte offset."""

    inode: int
    offset: int


def read_metrics_since(run_dir: Path, cursor: MetricsCursor | None) -> tuple[list[dict], MetricsCursor | None, bool]:
    """Rows appended since cursor, the cursor for next time, and whether the file was read
    from the start again because it was replaced (a resume rewrites it without the rows its
    checkpoint does not cover): then the caller must drop the rows it kept.

    Only whole lines are consumed, so a line the trainer is still writing is read on the
    next call; a live chart therefore reads only what was appended since its last tick.
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return [], None, cursor is not None
    with f:
        st = os.fstat(f.fileno())
        restarted = cursor is not None and (cursor.inode != st.st_ino or st.st_size < cursor.offset)
        offset = cursor.offset if cursor is not None and not restarted else 0
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows, MetricsCursor(st.st_ino, offset + end), restarted


def recorded_epochs(run_dir: Path, split: str) -> list[int]:
    """Epochs for which predictions (val, test) or a confusion matrix (train) were saved."""
    folder = Path(run_dir) / PREDICTIONS_DIR
    if not folder.is_dir():
        return []
    epochs = []
    for p in folder.iterdir():
        m = _PREDICTION_FILE.match(p.name)
        if m and m.group(1) == split:
            epochs.append(int(m.group(2)))
    return sorted(epochs)


def load_predictions(run_dir: Path, split: str, epoch: int) -> dict[str, np.ndarray]:
    """The arrays saved for a split and epoch (see the format above)."""
    with np.load(prediction_path(run_dir, split, epoch)) as npz:
        return {k: npz[k] for k in npz.files}
