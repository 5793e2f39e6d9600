"""What a run's progress is, from its status, config and metrics rows: epochs and steps
done, speed, ETA (training and the evaluations still to come), elapsed time, peak memory,
accuracies and what an active trainer does now. The Monitor page shows it; ``sweep
--report`` and the runs table take a run's training time from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from . import runs
from .runs.values import as_count, as_float


class RowsSoFar(Protocol):
    """A run's metrics rows read so far, by type (the Monitor's MetricsHistory is one)."""

    @property
    def epoch_rows(self) -> Sequence[dict]: ...

    @property
    def test_rows(self) -> Sequence[dict]: ...

    @property
    def last_step(self) -> dict | None: ...

    @property
    def last_epoch(self) -> dict | None: ...


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
    speed_epoch: int | None = None  # images_per_s is this epoch's average; None: the latest steps'


def _obj(x) -> dict:
    return x if isinstance(x, dict) else {}


def _timing(info: runs.RunInfo, history: RowsSoFar | None, now: float) -> tuple[float | None, float]:
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


def _test_results(status: dict, history: RowsSoFar | None,
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


def _peak_memory(history: RowsSoFar | None) -> float | None:
    for row in reversed(history.epoch_rows if history else []):
        peak = as_float(row.get("peak_memory_mb"))
        if peak is not None:
            return peak
    return None


def compute_progress(info: runs.RunInfo, history: RowsSoFar | None = None, now: float | None = None) -> Progress:
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
    speed_epoch = None
    if images_per_s is None and last_epoch is not None:
        images_per_s, speed_epoch = as_float(last_epoch.get("images_per_s")), as_count(last_epoch.get("epoch"))
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
        speed_epoch=speed_epoch,
    )

