"""What the run monitor shows, computed from a run's status, config and metrics rows.

:class:`MetricsHistory` keeps the rows read so far and a cursor into ``metrics.jsonl``;
each :meth:`MetricsHistory.update` reads only what the trainer appended since (see
:func:`resnet_core.runs.read_metrics_since`).

What each evaluation number is comes from :mod:`resnet_core.evaluation_labels`; numbers and
run-folder text become words through :mod:`resnet_core.formatting`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, TypeVar

import pandas as pd

from .. import runs
from ..runs.values import as_count, as_float
from ..model_names import PLAIN, shortcut_label
from ..evaluation_labels import TEST_AS_VALIDATION, EvaluationLabels, evaluation_labels
from ..formatting import format_duration, format_pct, md_escape
from .series import Rows

T = TypeVar("T")
MEMO_ENTRIES = 24  # MetricsHistory.memo: a few charts, each for the x axes, smoothings and scales tried lately


def _lru_get(cache: OrderedDict, key, make: Callable[[], T], limit: int) -> T:
    """cache[key], made by make() when absent; the most recently used last, and the least
    recently used dropped beyond limit entries. The caller holds the cache's lock."""
    if key in cache:
        cache.move_to_end(key)
    else:
        cache[key] = make()
        while len(cache) > limit:
            cache.popitem(last=False)
    return cache[key]


@dataclass
class MetricsHistory:
    """The rows of one run's metrics.jsonl by type, each a
    :class:`~resnet_core.dashboard.series.Rows` whose chart columns are computed once."""

    run_dir: Path
    step_rows: Rows = field(default_factory=lambda: Rows(kind="step"))
    epoch_rows: Rows = field(default_factory=lambda: Rows(kind="epoch"))
    test_rows: Rows = field(default_factory=lambda: Rows(kind="test"))
    system_rows: Rows = field(default_factory=lambda: Rows(kind="system"))
    cursor: runs.MetricsCursor | None = None
    reads: int = 0  # how many times the file was read (for tests and the curious)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    built: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)  # memo(): key -> value

    def update(self) -> int:
        """Read the rows appended since the last call; returns how many were new."""
        rows, cursor, restarted = runs.read_metrics_since(self.run_dir, self.cursor)
        self.reads += 1
        if rows or restarted:
            self.built.clear()
        kept = {"step": self.step_rows, "epoch": self.epoch_rows, "test": self.test_rows, "system": self.system_rows}
        if restarted:
            kept = {kind: Rows(kind=kind) for kind in kept}
            self.step_rows, self.epoch_rows, self.test_rows, self.system_rows = kept.values()
        for row in rows:
            kind = row.get("type")
            if isinstance(kind, str) and kind in kept:  # any JSON may stand there: a list is unhashable
                kept[kind].append(row)
        self.cursor = cursor
        return len(rows)

    def memo(self, key, build: Callable[[], T]) -> T:
        """build(), made once for these rows: kept under key (hashable, and naming whatever
        else build() reads) until update() finds new rows. A completed run's charts are then
        built once, not on every page load: a 200,000-row run's Monitor script took 0.085 s
        before, 0.014-0.023 s after (AppTest, idle)."""
        with self.lock:
            return _lru_get(self.built, key, build, MEMO_ENTRIES)

    @property
    def last_step(self) -> dict | None:
        return self.step_rows[-1] if self.step_rows else None

    @property
    def last_epoch(self) -> dict | None:
        return self.epoch_rows[-1] if self.epoch_rows else None


SHARED_HISTORIES = 8  # runs whose rows the server keeps between page runs
_shared: OrderedDict[Path, MetricsHistory] = OrderedDict()
_shared_lock = threading.Lock()


def shared_history(run_dir: Path) -> MetricsHistory:
    """The server's one MetricsHistory of a run folder (the SHARED_HISTORIES most recently
    asked for are kept), so a reload or a second tab reads only the rows appended since:
    a first read of 200,000 step rows takes about a second. Sessions run in threads: hold
    its lock while updating it and drawing from it, as a chart's columns must be read
    while no row is added."""
    key = Path(run_dir).resolve()
    with _shared_lock:
        return _lru_get(_shared, key, lambda: MetricsHistory(key), SHARED_HISTORIES)


@dataclass(frozen=True)
class Progress:
    state: str
    epoch: int  # completed epochs
    total_epochs: int
    step: int  # optimizer steps taken
    total_steps: int
    steps_per_epoch: int
    epoch_fraction: float  # 0..1 of the whole run, by steps
    step_fraction: float  # 0..1 within the epoch in progress
    step_in_epoch: int
    images_per_s: float | None
    eta_s: float | None  # seconds left, None when unknown or not running
    elapsed_s: float | None
    peak_memory_mb: float | None
    best_val_acc: float | None
    best_epoch: int | None
    test_acc: float | None  # the final test evaluation, after the last epoch
    test_epoch: int | None  # the epoch the final test evaluation followed
    monitor_test_acc: float | None  # the latest per-epoch test evaluation (monitoring only)
    monitor_test_epoch: int | None
    last_update_age_s: float | None  # seconds since the trainer last wrote something
    phase: str | None  # what an active trainer does now (runs.PHASES); None when ended or not recorded
    phase_done: int | None  # images an evaluation phase has done, of phase_total
    phase_total: int | None
    first_step_s: float | None  # the session's first training step, compiling included


def _obj(x) -> dict:
    return x if isinstance(x, dict) else {}


def _timing(info: runs.RunInfo, history: MetricsHistory | None, now: float) -> tuple[float | None, float]:
    """Seconds the run has trained (earlier sessions included; None before it started), and
    the time the trainer last wrote something (0.0 when unknown)."""
    status = _obj(info.status)
    last_step = history.last_step if history else None
    last_epoch = history.last_epoch if history else None
    started = as_float(status.get("started_at"))
    finished = as_float(status.get("finished_at"))
    # A heartbeat from the future (clock skew, runs.heartbeat_skew) is no time the run reached:
    # it would stretch a crashed run's time to days. Its rows' times say when it last wrote.
    updated = None if runs.heartbeat_skew(status, now) is not None else as_float(status.get("updated_at"))
    last_time = max(t for t in (updated, as_float(last_step.get("time")) if last_step else None,
                                as_float(last_epoch.get("time")) if last_epoch else None, 0.0) if t is not None)
    elapsed = None
    # An ended run without a finish or any time it last wrote (a skewed heartbeat only) took
    # an unknown time, not "until now": that would grow with the clock.
    end = finished if finished is not None else (now if info.state == "running" else (last_time or None))
    if started is not None and end is not None:
        elapsed = max(0.0, end - started) + (as_float(status.get("elapsed_before_s")) or 0.0)  # earlier sessions
    return elapsed, last_time


def _eta(remaining: int, steps_per_epoch: int, step: int, batch: float | None, last_epoch: dict | None,
         images_per_s: float | None, elapsed: float | None) -> float | None:
    """Seconds left for the remaining steps: from the last epoch's training time, else the
    speed, else the average so far."""
    if not remaining:
        return 0.0
    epoch_seconds = as_float(last_epoch.get("epoch_seconds")) if last_epoch else None
    if epoch_seconds and steps_per_epoch:
        return epoch_seconds * remaining / steps_per_epoch
    if images_per_s and batch:
        return remaining * batch / images_per_s
    if elapsed and step > 0:
        return remaining * elapsed / step
    return None


def _phase(info: runs.RunInfo) -> tuple[str | None, int | None, int | None]:
    """An active run's phase and, for an evaluation, its images done and in all."""
    status = _obj(info.status)
    phase = status.get("phase")
    if not info.is_active or phase not in runs.PHASES:
        return None, None, None
    total = as_count(status.get("phase_total"), 0)
    if phase not in runs.EVALUATION_PHASES or not total:
        return phase, None, None
    return phase, min(as_count(status.get("phase_done"), 0), total), total


# How many times faster than training an evaluation goes through images (no backward pass,
# no optimizer step), for the ETA before a run has timed one. Measured on this 2-core machine
# (ResNet-20, CPU, batch 128, 2,048 training images, while other jobs ran): training 177 and
# 91 images/s (epochs 1 and 2), validation of 1,000 images 1,113 and 330 images/s, the final
# test of 10,000 403 images/s: 3.6 to 6.3 times; 4 errs on the long side.
EVAL_SPEEDUP = 4.0


def _evaluation_eta(status: dict, resolved: dict, last_epoch: dict | None, epochs_left: int,
                    images_per_s: float | None, now: float) -> float:
    """Seconds the evaluations still to come take: each epoch's validation (and monitoring
    test), then the final test of a validated run. Their pace: the last epoch row's
    eval_seconds over its images, else (none timed yet, or rows from before eval_seconds)
    EVAL_SPEEDUP times the training speed; the one under way at its own pace once it has
    done some images."""
    val_images, test_images = as_count(resolved.get("val_size"), 0), as_count(resolved.get("test_size"), 0)
    monitor_test = bool(resolved.get("test_every_epoch"))
    per_epoch = val_images + (test_images if monitor_test else 0)
    measured = as_float(last_epoch.get("eval_seconds")) if last_epoch else None
    rate = None  # images per second
    if measured and per_epoch:
        rate = per_epoch / measured
    elif images_per_s:
        rate = images_per_s * EVAL_SPEEDUP
    epoch_eval = measured if measured is not None else (per_epoch / rate if rate else 0.0)
    final_test = 0.0 if monitor_test or not rate else test_images / rate
    if status.get("phase") not in runs.EVALUATION_PHASES:
        return epoch_eval * epochs_left + final_test
    done, total = as_count(status.get("phase_done"), 0), as_count(status.get("phase_total"), 0)
    started = as_float(status.get("phase_started_at"))
    if not epochs_left:  # every epoch done: this is the final test
        under_way = final_test
        final_test = 0.0
    else:
        under_way = epoch_eval
    if done and total and started is not None:
        under_way = max(0.0, now - started) * max(0, total - done) / done
    return epoch_eval * max(0, epochs_left - 1) + under_way + final_test


def _test_results(status: dict, history: MetricsHistory | None,
                  epoch: int) -> tuple[float | None, int | None, float | None, int | None]:
    """The final test accuracy and the epoch it followed, and the latest per-epoch
    (monitoring) test accuracy and its epoch."""
    test_acc = as_float(status.get("test_acc"))
    test_epoch = None
    if test_acc is not None:
        # The final evaluation follows the last epoch: its row says which, else status does.
        last_test = history.test_rows[-1] if history and history.test_rows else {}
        test_epoch = as_count(last_test.get("epoch"), epoch)
    for row in reversed(history.epoch_rows if history else []):
        if as_float(row.get("test_acc")) is not None:
            return test_acc, test_epoch, as_float(row["test_acc"]), row.get("epoch")
    return test_acc, test_epoch, None, None


def _peak_memory(history: MetricsHistory | None) -> float | None:
    for row in reversed(history.epoch_rows if history else []):
        peak = as_float(row.get("peak_memory_mb"))
        if peak is not None:
            return peak
    return None


def compute_progress(info: runs.RunInfo, history: MetricsHistory | None = None, now: float | None = None) -> Progress:
    now = time.time() if now is None else now
    status, resolved, cfg = _obj(info.status), info.resolved, info.train_config
    total_epochs = as_count(status.get("total_epochs"), 0) or as_count(cfg.get("epochs"), 0)
    total_steps = as_count(status.get("total_steps"), 0) or as_count(resolved.get("total_steps"), 0)
    steps_per_epoch = (as_count(resolved.get("steps_per_epoch"), 0)
                       or (total_steps // total_epochs if total_epochs else 0))
    step = as_count(status.get("step"), 0)
    epoch = as_count(status.get("epoch"), 0)
    last_step = history.last_step if history else None
    last_epoch = history.last_epoch if history else None
    if last_step and as_count(last_step.get("step"), 0) > step:
        step = as_count(last_step["step"], 0)  # step rows run ahead of status.json within an epoch
    if last_epoch and as_count(last_epoch.get("epoch"), 0) > epoch:
        epoch = as_count(last_epoch["epoch"], 0)

    if info.state == "completed" and total_steps:
        step = max(step, total_steps)
    epoch_fraction = min(1.0, step / total_steps) if total_steps else (epoch / total_epochs if total_epochs else 0.0)
    if info.state == "completed":
        epoch_fraction = 1.0
    step_in_epoch = step - epoch * steps_per_epoch if steps_per_epoch else 0
    step_in_epoch = max(0, min(step_in_epoch, steps_per_epoch))

    images_per_s = None
    if info.state == "running" and last_step is not None:
        images_per_s = as_float(last_step.get("images_per_s"))
    if images_per_s is None and last_epoch is not None:
        images_per_s = as_float(last_epoch.get("images_per_s"))
    elapsed, last_time = _timing(info, history, now)
    phase, phase_done, phase_total = _phase(info)
    eta = None
    if info.state == "running" and total_steps and (step < total_steps or phase in runs.EVALUATION_PHASES):
        eta = _eta(total_steps - step, steps_per_epoch, step, as_float(cfg.get("batch_size")), last_epoch,
                   images_per_s, elapsed)
        if eta is not None:
            eta += _evaluation_eta(status, resolved, last_epoch, max(0, total_epochs - epoch), images_per_s, now)
    test_acc, test_epoch, monitor_test_acc, monitor_test_epoch = _test_results(status, history, epoch)
    return Progress(
        state=info.state, epoch=epoch, total_epochs=total_epochs, step=step, total_steps=total_steps,
        steps_per_epoch=steps_per_epoch, epoch_fraction=epoch_fraction,
        step_fraction=step_in_epoch / steps_per_epoch if steps_per_epoch else 0.0,
        step_in_epoch=step_in_epoch, images_per_s=images_per_s, eta_s=eta, elapsed_s=elapsed,
        peak_memory_mb=_peak_memory(history), best_val_acc=as_float(status.get("best_val_acc")),
        best_epoch=as_count(status.get("best_epoch")) or None, test_acc=test_acc, test_epoch=test_epoch,
        monitor_test_acc=monitor_test_acc, monitor_test_epoch=monitor_test_epoch,
        last_update_age_s=(now - last_time) if last_time else None,
        phase=phase, phase_done=phase_done, phase_total=phase_total, first_step_s=as_float(status.get("first_step_s")),
    )


PHASE_TEXT = {
    "loading data": "loading the data onto the device…",
    "building model": "building the model and its first step (compiling included)…",
    "validating": "validating",
    "testing": "testing",
    "saving": "saving predictions and checkpoints…",
}


def phase_bar(progress: Progress) -> tuple[str, float] | None:
    """The monitor's second bar while an active run does something other than training
    steps (or waiting in the queue): its text and fraction done. None otherwise."""
    text = PHASE_TEXT.get(progress.phase or "")
    if text is None:
        return None
    if progress.phase_total:
        # status.json counts an epoch once its checkpoint is saved: all counted, the final test runs.
        of = "the final weights" if progress.epoch >= progress.total_epochs else f"epoch {progress.epoch + 1}"
        return (f"{text} {of}: {progress.phase_done:,} of {progress.phase_total:,} images",
                progress.phase_done / progress.phase_total)
    return text, 0.0


@dataclass(frozen=True)
class MetricText:
    label: str  # short: a metric's label is cut to one line
    value: str
    help: str  # the full sentence: what the number is


def accuracy_metrics(labels: EvaluationLabels, progress: Progress) -> tuple[MetricText, MetricText]:
    """The monitor's two accuracy figures, each saying what it is and from which epoch:
    the best validation accuracy (or that there is none), and the test accuracy (the
    final evaluation once there is one, else the latest monitoring evaluation)."""
    epoch = f" (epoch {progress.best_epoch})" if progress.best_epoch else ""
    value = format_pct(progress.best_val_acc)
    if labels.val_source == "test":
        best = MetricText(f"Best test acc{epoch}", value,
                          f"Best test acc, {TEST_AS_VALIDATION}: this run had no validation split of its own and "
                          "chose its best epoch (best.pt) on the test set, so this number is optimistic.")
    elif not labels.has_validation:
        best = MetricText("Validation", "none", "No validation split: the run trains on every training image "
                                                "and picks no checkpoint by accuracy.")
    else:
        best = MetricText(f"Best val acc{epoch}", value, "Best val acc: the best accuracy on the validation split "
                                                         "(held-out training images) over the epochs so far.")
    if progress.test_acc is not None:
        test = MetricText(f"Final test acc (epoch {progress.test_epoch})", format_pct(progress.test_acc),
                          f"Final test acc: the test set evaluated once after the last epoch "
                          f"({progress.test_epoch}), with the weights training ended on.")
    elif progress.monitor_test_acc is not None:
        test = MetricText(f"Test acc (epoch {progress.monitor_test_epoch}, monitor)",
                          format_pct(progress.monitor_test_acc),
                          f"Test acc: {labels.test_epochs}, after epoch {progress.monitor_test_epoch}.")
    else:
        when = "after every epoch, for monitoring only" if labels.test_every_epoch else "once, after the last epoch"
        test = MetricText("Test acc", "—", f"Test acc: the test set is evaluated {when}.")
    return best, test


# The Monitor's state of a run between a click on Resume and the resumed trainer's first
# write to status.json (about 3 s, importing torch): the folder still says "stopped" then,
# and showing that, with the Resume button, invited a second click.
RESUMING = "resuming…"


def launched_here(pending: Mapping | None, run_id: str, resume: bool = False) -> bool:
    """Whether pending, the launch this session recorded (the page's train_pending), is of
    run_id (with resume: a resume of it)."""
    return bool(pending and pending.get("run_id") == run_id and (pending.get("resume") or not resume))


def shown_state(state: str, run_id: str, pending: Mapping | None, alive: bool) -> str:
    """The state the Monitor shows for a run: RESUMING while a trainer this session resumed
    (pending: the launch it recorded) runs and the folder still says how the run ended;
    the folder's state otherwise (the trainer wrote, or exited)."""
    resuming = launched_here(pending, run_id, resume=True) and alive and state in runs.RESUMABLE_STATES
    return RESUMING if resuming else state


def resume_refused(status: Mapping, run_id: str, pending: Mapping | None, alive: bool) -> bool:
    """Whether a resume this session launched (pending) ended without a word in the folder:
    its trainer has exited and status.json is older than the launch (a trainer that refuses
    the resume, a corrupt last.pt say, exits before it writes), so that the page says why
    (the trainer's last output line) instead of showing the old state as if nothing happened."""
    if not launched_here(pending, run_id, resume=True) or alive:
        return False
    updated, launched = as_float(status.get("updated_at")), as_float(pending.get("t"))
    return launched is not None and (updated is None or updated < launched)


STATE_COLOURS = {
    "queued": "gray", "running": "blue", "completed": "green", "stopped": "orange",
    "failed": "red", "diverged": "red", runs.CRASHED: "red", runs.FAILED_TO_START: "red", runs.UNREADABLE: "violet",
    RESUMING: "blue",
}
STATE_ICONS = {
    "queued": ":material/hourglass_empty:", "running": ":material/play_circle:",
    "completed": ":material/check_circle:", "stopped": ":material/stop_circle:",
    "failed": ":material/error:", "diverged": ":material/trending_up:", runs.CRASHED: ":material/dangerous:",
    runs.FAILED_TO_START: ":material/cancel:", runs.UNREADABLE: ":material/broken_image:",
    RESUMING: ":material/hourglass_top:",
}
STATE_HELP = {
    "queued": "waiting for the device: another run holds it",
    "running": "training",
    "completed": "finished all epochs and the test evaluation",
    "stopped": "stopped on request; resume continues from the last step",
    "failed": "the trainer raised an error",
    "diverged": "the loss became NaN or infinite; training stopped",
    runs.CRASHED: "the trainer process disappeared (killed or out of memory); resume continues from the last epoch",
    runs.FAILED_TO_START: "the trainer exited before it wrote the run's config (its last output says why); "
                          "launch it again",
    runs.UNREADABLE: "the run folder's files cannot be read as the format says (see the run's problem)",
    RESUMING: "the trainer is starting again from last.pt",
}


def _text(x) -> str | None:
    """A config value as table text: strings as they are, None as None, anything else as its repr."""
    return x if isinstance(x, str) or x is None else repr(x)


def run_summary_row(info: runs.RunInfo) -> dict:
    """One row of the runs table: config, state, best validation accuracy (and what the
    run validated on), final test accuracy, epochs, time; the same type in each column
    whatever the run folder holds."""
    cfg, resolved, status = info.train_config, info.resolved, _obj(info.status)
    duration = compute_progress(info).elapsed_s
    total = as_count(status.get("total_epochs"), 0) or as_count(cfg.get("epochs"), 0) or "?"
    return {
        "run": info.run_id,
        "state": info.state,
        "problem": info.problem or info.note or info.warning,
        "model": info.model_name or "?",
        "sweep": _text(cfg.get("sweep")),
        "block": _text(cfg.get("block")),
        "shortcut": shortcut_label(_text(cfg.get("shortcut"))),
        "epochs": f"{as_count(status.get('epoch'), 0)}/{total}",
        "best val acc": as_float(status.get("best_val_acc")),
        "best epoch": as_count(status.get("best_epoch")) or None,
        "val split": evaluation_labels(info.config).split,
        "test acc": as_float(status.get("test_acc")),
        "time": format_duration(duration) if duration is not None else "—",
        "batch": as_float(cfg.get("batch_size")),
        "lr": as_float(cfg.get("lr")),
        "schedule": _text(cfg.get("schedule")),
        "device": _text(resolved.get("device") or cfg.get("device")),
        "precision": _text(resolved.get("precision") or cfg.get("precision")),
        "created": as_float(_obj(info.config).get("created")),
    }


def runs_table(infos: Sequence[runs.RunInfo]) -> pd.DataFrame:
    """The Runs page's table: run_summary_row of each run, accuracies in percent, created a
    time; runs must not be empty. Every column converts to Arrow (st.dataframe's transport) whatever the folders hold:
    each number in it is one that run_summary_row checked."""
    table = pd.DataFrame([run_summary_row(r) for r in infos])
    for column in ("best val acc", "test acc"):
        table[column] = table[column].map(lambda x: None if x is None else 100 * x)
    table["created"] = pd.to_datetime(table["created"], unit="s", errors="coerce")
    return table


def run_caption(info: runs.RunInfo) -> str:
    """The monitor's one-line description of a run's settings, as markdown-safe text."""
    cfg, resolved = info.train_config, info.resolved
    shortcut, batch, lr, schedule = (_text(cfg.get(k)) for k in ("shortcut", "batch_size", "lr", "schedule"))
    device = _text(resolved.get("device_name") or resolved.get("device") or cfg.get("device"))
    # A setting the folder does not record is left out (it read "batch None", and a device
    # missing raised TypeError).
    parts = [
        info.model_name or "ResNet-?",
        _text(cfg.get("block")),
        "no shortcuts" if shortcut == PLAIN else shortcut and f"option {shortcut}",
        batch and f"batch {batch}",
        (lr or schedule) and " ".join(["lr"] + [x for x in (lr, schedule) if x]),
        device and device + (f" × {info.world_size} processes (torchrun)" if info.world_size > 1 else ""),
        _text(resolved.get("precision") or cfg.get("precision")),
    ]
    labels = evaluation_labels(_obj(info.config))
    train_size = as_count(resolved.get("train_size"), 0)
    if train_size:
        parts.append(f"{train_size:,} train"
                     + (f" / {as_count(resolved.get('val_size'), 0):,} val" if labels.has_validation else ""))
    if labels.val_source != "train":
        parts.append(labels.split)
    return " · ".join(md_escape(p) for p in parts if p)
