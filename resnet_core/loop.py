"""One training run into its run folder: the device queue, the epoch loop, evaluations,
checkpoints and the status a reader sees (the format: resnet_core/runs/folder_format.py).

:meth:`Run.execute` reads top to bottom: status queued, the device lock, data and model,
then :meth:`Run.train_epoch` per epoch and :meth:`Run.finish_epoch` after it (metrics,
predictions, checkpoints), then the final test.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import logging
import math
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__, distributed, placement, runs
from .config import Plan, TrainConfig
from .cifar import Cifar10, DataError, resolve_data_dir
from .data import DeviceLoader
from .device import device_name, peak_memory_mb
from .distributed import Group, World
from .models import describe_model, model_name
from .run_model import ModelLoadError, read_checkpoint
from .runs.values import as_float
from .step import Trainer
from .usage import UsageRecorder, UsageSampler

log = logging.getLogger("resnet_core.train")
# Tracebacks go to train.log only: the terminal and the dashboard get one line.
trace_log = logging.getLogger("resnet_core.trace")


SYSTEM_ROW_MIN_S = 2.0  # system rows come every log_seconds, but never more often than this


class StopRequested:
    """Set by SIGTERM/SIGINT; the loop looks at it after every step."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def install(self) -> None:
        def handler(signum, _frame):
            self.signal = signum

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


class Diverged(Exception):
    pass


@dataclass
class EpochSums:
    """Running totals of one training epoch, kept on the device to avoid syncs."""

    loss: torch.Tensor
    correct: torch.Tensor
    seen: int
    confusion: torch.Tensor  # C*C flattened counts, rows = true class

    @classmethod
    def zeros(cls, device: torch.device, num_classes: int) -> "EpochSums":
        return cls(torch.zeros((), device=device, dtype=torch.float64),
                   torch.zeros((), device=device, dtype=torch.int64),
                   0, torch.zeros(num_classes * num_classes, device=device, dtype=torch.int64))

    def state(self) -> dict:
        return {"loss": self.loss.cpu(), "correct": self.correct.cpu(), "seen": self.seen,
                "confusion": self.confusion.cpu()}

    def summed(self, group: Group) -> "EpochSums":
        """The totals of every rank of a distributed run (a copy; one rank's own otherwise)."""
        if not group.world.distributed:
            return self
        out = EpochSums(self.loss.clone(), self.correct.clone(), 0, self.confusion.clone())
        out.seen = group.sum_(out.loss, out.correct, out.confusion, count=self.seen)
        return out

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> "EpochSums":
        return cls(state["loss"].to(device), state["correct"].to(device), state["seen"], state["confusion"].to(device))


class Run:
    """One run of a :class:`Trainer` into its folder: status, metrics, evaluations, checkpoints."""

    def __init__(self, cfg: TrainConfig, plan: Plan, data: Cifar10, run_dir: Path, stop: StopRequested,
                 checkpoint: dict | None = None, device_slots: int = 1,
                 clock: Callable[[], float] = time.perf_counter, group: Group | None = None,
                 device_lock: bool = True, changes: dict[str, list] | None = None):
        """clock: seconds for the row and progress cadence and the durations recorded (a
        test passes a fake one). group: the ranks of a distributed run (rank 0 alone writes
        the folder). device_lock: take the device's lock in the runs folder (see
        placement); a distributed run's ranks never do. changes: the settings a resume
        changed, {field: [old, new]} (config.resume_config), recorded in config.json."""
        self.cfg, self.plan, self.data, self.stop, self.clock = cfg, plan, data, stop, clock
        self.group = group or Group(World())
        self.device_lock = device_lock and not self.group.world.distributed
        self.trainer: Trainer | None = None  # built on the device acquire_device takes
        self.writer = runs.RunWriter(run_dir) if self.group.world.is_main else runs.PeerWriter(run_dir)
        self.checkpoint = checkpoint  # last.pt's state on a resume, already checked by the caller
        self.changes = changes or {}
        self.device_slots = device_slots  # runs that may share one device (a sweep's --parallel on a CPU)
        self.placement: placement.Placement | None = None  # the device lock, held to the process's end
        self.best_val_acc, self.best_epoch = -1.0, 0  # best_epoch 0: no validation result yet
        self.last_test: dict | None = None  # the latest per-epoch test evaluation (no validation split)
        self.first_step_s: float | None = None  # this session's first training step, compiling included
        self.epoch_now = 1  # the epoch in progress, for the system rows

    @property
    def run_dir(self) -> Path:
        return self.writer.run_dir

    def best_fields(self) -> dict:
        """status.json's view of the best validation epoch: null without a validation result."""
        return {"best_val_acc": self.best_val_acc if self.best_epoch else None, "best_epoch": self.best_epoch or None}

    def set_phase(self, phase: str | None, total: int | None = None, **changes) -> None:
        """status.json's phase (None once the run has ended) with these other changes; an
        evaluation's progress starts at 0 of `total` images. Entering the phase the run is
        in already changes nothing (its start time stays)."""
        if phase == self.writer.status.get("phase") and total is None and not changes:
            return
        self.writer.set_status(phase=phase, phase_started_at=time.time() if phase else None,
                               phase_done=None if total is None else 0, phase_total=total, **changes)

    def write_config(self, **resolved) -> None:
        new_record = {"run_id": self.run_dir.name, "created": time.time(), "config": dataclasses.asdict(self.cfg),
                      "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                   "torchvision": _installed_version("torchvision"), "numpy": np.__version__,
                                   "resnet_core": __version__}}
        self.writer.write_config(new_record, **resolved)

    # -- the device queue -----------------------------------------------------------
    def acquire_device(self) -> bool:
        """Take a free device of the config's device spec for the rest of the process,
        waiting in state queued while all are busy, then build the trainer on it. False if
        a stop was requested while waiting."""
        def queued(devices: list[str]) -> None:
            log.info("%s busy; queued until %s frees", ", ".join(devices), "it" if len(devices) == 1 else "one")
            self.writer.set_status(state="queued")

        world = self.group.world
        candidates = placement.candidate_devices(self.cfg.device)
        if self.device_lock:
            self.placement = placement.acquire(self.run_dir.parent, candidates, self.device_slots,
                                               should_stop=lambda: bool(self.stop), on_queued=queued)
            if self.placement is None:
                return False
            device = torch.device(self.placement.device)
        else:  # torchrun's ranks start together and Ray places its tasks: neither queues here
            device = torch.device(distributed.device_for(world, self.cfg.device) or candidates[0])
        if device.type == "cpu":  # runs sharing the CPU share its cores rather than oversubscribe them
            torch.set_num_threads(placement.cpu_threads(self.device_slots * world.local_size))
        t = self.trainer = Trainer(self.cfg, self.plan, device, self.group)
        ranks = self.group.gather((distributed.host(), str(device), device_name(device)))
        nodes: dict[str, dict] = {}
        for host, dev, name in ranks:
            node = nodes.setdefault(host, {"host": host, "devices": [], "device_names": []})
            node["devices"].append(dev)
            node["device_names"].append(name)
        self.write_config(device=str(device), device_name=device_name(device), precision=t.precision,
                          channels_last=t.channels_last, compile=t.compile, world_size=world.size,
                          nodes=list(nodes.values()))
        return True

    # -- the main sequence ----------------------------------------------------------------
    def execute(self) -> int:
        """Run to the end; returns the process exit code. Never raises."""
        status, now = self.writer.status, time.time()
        # A resumed run keeps the training time of its earlier sessions.
        earlier = as_float(status.get("elapsed_before_s")) or 0.0
        started = as_float(status.get("started_at"))
        if self.checkpoint is not None and started:
            end = as_float(status.get("finished_at")) or as_float(status.get("updated_at")) or started
            earlier += max(0.0, end - started)
        # Status before config: readers take a folder with config.json but no live status
        # for a crashed run, so that order must never be visible.
        try:
            self.set_phase("queued", state="queued", epoch=status.get("epoch", 0), step=status.get("step", 0),
                           total_epochs=self.plan.epochs, total_steps=self.plan.total_steps,
                           created_at=status.get("created_at", now), started_at=None, finished_at=None,
                           error=None, elapsed_before_s=earlier, first_step_s=None)
            if self.changes:  # the record holds the settings the run goes on with, and when they changed
                done = self.checkpoint or {}
                self.writer.config["config"] = dataclasses.asdict(self.cfg)
                self.writer.config.setdefault("resumed_with", []).append(
                    {"at": now, "epoch": done.get("epoch", 0), "step": done.get("step", 0), "changes": self.changes})
            self.write_config()
        except OSError as e:  # e.g. a resume while the folder is still unwritable
            log.error("run failed: cannot write %s: %s%s", e.filename, e.strerror, self.resume_hint())
            return 1
        with self.writer.heartbeats():
            return self._queue_and_train()

    def _queue_and_train(self) -> int:
        """Wait for a device and train; the exit code, and the final state written (none when
        another process of the run is gone). Never raises."""
        try:
            if not self.acquire_device():
                self.set_phase(None, state="stopped", finished_at=time.time())
                log.info("stopped while queued")
                return 0
            self.set_phase("loading data", state="running", started_at=time.time())
            return self.train()
        except Diverged as e:
            log.error("%s%s", e, self.end("diverged", str(e)))
            return 3
        except Exception as e:
            if self.group.world.distributed and distributed.peer_lost(e):
                # The run is not over: the folder keeps saying running, and readers report it
                # crashed once this process is gone; --resume continues from last.pt.
                log.error("another process of this run is gone (%s); stopping without a final state: the run "
                          "reads as crashed, and --resume continues from its last checkpoint", str(e)[:300])
                return 1
            if isinstance(e, OSError) and e.filename:  # a full disk, a folder made unwritable: no bug to trace
                message = f"cannot write {e.filename}: {e.strerror}"
                log.error("run failed: %s%s%s", message, self.end("failed", message), self.resume_hint())
                return 1
            message = str(e) if isinstance(e, (DataError, ValueError)) else f"{type(e).__name__}: {e}"
            trace_log.error("%s", traceback.format_exc())
            log.error("run failed: %s (traceback in %s)%s", message, self.run_dir / runs.LOG_FILE,
                      self.end("failed", message))
            return 1

    def end(self, state: str, error: str) -> str:
        """Write the final state where the folder still takes it: '' when written, else what
        the one line on stderr adds about it."""
        try:
            self.set_phase(None, state=state, error=error, finished_at=time.time())
            return ""
        except OSError as e:
            return f"; status.json could not be written either ({e.strerror}): the run reads as crashed once ended"

    def resume_hint(self) -> str:
        return f"; once it can be written, --resume {self.run_dir} continues from the last checkpoint"

    def record_setup(self) -> None:
        """Complete config.json once the data and model are known."""
        cfg, plan, t = self.cfg, self.plan, self.trainer
        summary = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(t.classes))
        self.writer.config.update(classes=t.classes,
                                  model={"name": summary.name, "params": summary.params, "macs": summary.macs})
        self.write_config(
            steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps, max_steps=cfg.max_steps,
            train_size=t.train_loader.num_images, val_size=plan.val_images,
            val_source="train" if t.val_loader is not None else None, test_every_epoch=t.test_every_epoch,
            test_size=sum(self.group.gather(t.test_loader.num_images)),
            data_dir=str(resolve_data_dir(cfg.data_dir).resolve()),
            normalization=t.stats.as_record())

    def train(self) -> int:
        """Data, model and checkpoint, then the epochs and the final test, with a system row
        (resnet_core.usage) every log_seconds (at least SYSTEM_ROW_MIN_S) from the start, so
        loading and compiling show on the usage charts too."""
        cfg = self.cfg
        done_epochs, done_steps = (self.checkpoint["epoch"], self.checkpoint["step"]) if self.checkpoint else (0, 0)
        self.writer.start_metrics(done_steps, done_epochs)
        self.epoch_now = min(done_epochs + 1, self.plan.epochs)

        def position() -> tuple[int, int]:
            return self.epoch_now, max(self.trainer.step, done_steps)  # the checkpoint's until it is loaded

        if not self.group.world.is_main:
            return self.train_epochs()
        every = max(cfg.log_seconds, SYSTEM_ROW_MIN_S)  # the rows of rank 0's process and device
        with UsageRecorder(UsageSampler(self.trainer.device), self.writer.append_metrics, position, every):
            return self.train_epochs()

    def train_epochs(self) -> int:
        cfg, plan, t = self.cfg, self.plan, self.trainer
        # Trainer.setup's two halves, each its own phase: the first step ends "building model".
        t.prepare_data(self.data)
        self.data = None  # the host copy is no longer needed
        self.set_phase("building model")
        t.build()
        self.record_setup()
        start_epoch, partial = 0, None
        if self.checkpoint is not None:
            start_epoch, partial = self.load_checkpoint(self.checkpoint)
            log.info("resuming after epoch %d, step %d%s", start_epoch, t.step,
                     f" (mid-epoch at batch {partial['batch']})" if partial else "")
            self.repair_best_checkpoint()
        self.writer.set_status(epoch=start_epoch, step=t.step, **self.best_fields())
        log.info("training %s (%s, option %s) on %s (%s, %s, channels_last=%s): %d train / %s images, "
                 "%d steps in %d epochs", model_name(cfg.depth, cfg.shortcut), cfg.block, cfg.shortcut, t.device,
                 device_name(t.device), t.precision, t.channels_last, t.train_loader.num_images,
                 f"{plan.val_images} val" if t.val_loader else "no val (test monitored every epoch)",
                 plan.total_steps, plan.epochs)
        for epoch in range(start_epoch + 1, plan.epochs + 1):
            self.epoch_now = epoch
            if not self.train_epoch(epoch, partial):
                self.set_phase(None, state="stopped", finished_at=time.time())
                log.info("stopped at epoch %d, step %d; resume with --resume %s", epoch, t.step, self.run_dir)
                return 0
            partial = None
        # The final weights are the result; without a validation split the last epoch's
        # test evaluation already is the final one.
        test = self.last_test or self.evaluate(t.test_loader, "test", plan.epochs)
        self.writer.append_metrics({"type": "test", "epoch": plan.epochs, "step": t.step,
                                    "test_loss": test["loss"], "test_acc": test["acc"]})
        self.set_phase(None, state="completed", test_acc=test["acc"], finished_at=time.time())
        best = f", best validation {100 * self.best_val_acc:.2f}% (epoch {self.best_epoch})" if self.best_epoch else ""
        log.info("completed after %d steps: test accuracy %.2f%% (final weights)%s", t.step, 100 * test["acc"], best)
        return 0

    def train_epoch(self, epoch: int, partial: dict | None) -> bool:
        """One epoch (or its rest, after a mid-epoch resume). False if a stop was requested."""
        t, device, clock, group = self.trainer, self.trainer.device, self.clock, self.group
        log_every, log_seconds = self.cfg.log_every, self.cfg.log_seconds
        num_classes = len(t.classes)
        batches = self.plan.steps_in_epoch(epoch)  # fewer than a full epoch where max_steps ends the run
        # A mid-epoch checkpoint's sums are every rank's (summed at the stop): rank 0 alone carries them on.
        carried = partial is not None and group.world.is_main
        sums = EpochSums.from_state(partial["sums"], device) if carried else EpochSums.zeros(device, num_classes)
        start_batch = partial["batch"] if partial else 0
        elapsed_before = partial["seconds"] if partial else 0.0
        if self.first_step_s is not None:  # else the model is still building until its first step ends
            self.set_phase("training")
        t.model.train()
        t_epoch = clock()
        t_row, seen_row = t_epoch, 0
        row_loss = torch.zeros((), device=device)
        row_correct = torch.zeros((), device=device, dtype=torch.int64)
        progress = TerminalProgress(epoch, self.plan.epochs, batches, shown=group.world.is_main)
        batch = start_batch
        for _, x, y in t.train_loader.epoch(epoch, start_batch, batches):
            lr = t.schedule.lr(t.step)
            loss, logits = t.train_step(x, y)
            batch += 1
            with torch.no_grad():
                pred = logits.argmax(1)
                n = y.numel()
                correct = (pred == y).sum()
                row_loss += loss * n
                row_correct += correct
                sums.loss += loss.double() * n
                sums.correct += correct
                # scatter_add_, not bincount: on CUDA bincount reads its input's max back to the host,
                # a sync every step (H200, ResNet-20, batch 128: epochs 4.3-4.5 s with it, 3.8-4.2 s without)
                sums.confusion.scatter_add_(0, y * num_classes + pred, torch.ones_like(y))
            sums.seen += n
            seen_row += n
            # A row by count or by time, whichever comes first: at 20 steps a row, the first
            # point of a loss curve came 50-84 s after launch. Reading the clock costs no sync;
            # the row's .item() is the one device sync, so it happens only when a row is due.
            # In a distributed run the ranks agree on both flags (a CPU all-reduce, no device
            # sync): a stop on any rank stops all after this step, and rank 0's clock sets rows.
            now = clock()
            first = self.first_step_s is None
            stopping, due = group.any(bool(self.stop), first or t.step % log_every == 0 or batch == batches
                                      or bool(log_seconds and now - t_row >= log_seconds))
            if due or stopping:
                seen_row = group.sum_(row_loss, row_correct, count=seen_row)  # the row over the global batch
                mean_loss = row_loss.item() / seen_row
                now = clock()  # after the sync: the device has done the row's steps
                if not math.isfinite(mean_loss):
                    raise Diverged(f"loss became {mean_loss} at step {t.step} (epoch {epoch}); "
                                   f"try a lower learning rate or a warm-up")
                rate = seen_row / max(now - t_row, 1e-9)
                self.writer.append_metrics({"type": "step", "epoch": epoch, "step": t.step, "loss": mean_loss,
                                            "acc": row_correct.item() / seen_row, "lr": lr, "images_per_s": rate})
                if first:
                    self.first_step_s = now - t_epoch
                    self.set_phase("training", step=t.step, first_step_s=self.first_step_s)
                else:
                    self.writer.set_status(step=t.step)
                progress.update(batch, mean_loss, rate)
                t_row, seen_row = now, 0
                row_loss.zero_()
                row_correct.zero_()
            if stopping and batch < batches:
                progress.close()
                seconds = elapsed_before + clock() - t_epoch
                partial = {"epoch": epoch, "batch": batch, "sums": sums.summed(group).state(), "seconds": seconds}
                self.save_checkpoint(epoch - 1, partial)
                return False
        progress.close()
        self.finish_epoch(epoch, sums.summed(group), elapsed_before + clock() - t_epoch)
        return not group.any(bool(self.stop))[0] or epoch == self.plan.epochs

    def finish_epoch(self, epoch: int, sums: EpochSums, seconds: float) -> None:
        t = self.trainer
        train_loss = sums.loss.item() / sums.seen
        if not math.isfinite(train_loss):
            raise Diverged(f"loss became {train_loss} in epoch {epoch}; try a lower learning rate or a warm-up")
        self.writer.save_predictions("train", epoch, confusion=sums.confusion.view(len(t.classes), -1).cpu().numpy())
        t_eval = self.clock()
        val = self.evaluate(t.val_loader, "val", epoch) if t.val_loader is not None else None
        row = {"type": "epoch", "epoch": epoch, "step": t.step, "train_loss": train_loss,
               "train_acc": sums.correct.item() / sums.seen, "val_loss": val and val["loss"],
               "val_acc": val and val["acc"], "lr": t.schedule.lr(t.step - 1), "epoch_seconds": seconds,
               "images_per_s": sums.seen / max(seconds, 1e-9), "peak_memory_mb": peak_memory_mb(t.device)}
        if t.test_every_epoch:  # monitoring only: never compared, never used to keep weights
            self.last_test = self.evaluate(t.test_loader, "test", epoch)
            row.update(test_loss=self.last_test["loss"], test_acc=self.last_test["acc"])
        row["eval_seconds"] = self.clock() - t_eval  # the ETA adds it for the epochs to come
        self.writer.append_metrics(row)
        improved = val is not None and val["acc"] > self.best_val_acc
        if improved:
            self.best_val_acc, self.best_epoch = val["acc"], epoch
        self.save_checkpoint(epoch, None, also_best=improved)
        self.writer.set_status(epoch=epoch, step=t.step, **self.best_fields())
        shown = (f"val loss {val['loss']:.4f} acc {100 * val['acc']:.2f}%" if val else
                 f"test (monitoring) loss {self.last_test['loss']:.4f} acc {100 * self.last_test['acc']:.2f}%")
        log.info("epoch %d/%d: train loss %.4f acc %.2f%% | %s | %.1f s", epoch, self.plan.epochs, train_loss,
                 100 * sums.correct.item() / sums.seen, shown, seconds)

    def evaluate(self, loader: DeviceLoader, split: str, epoch: int) -> dict:
        """Record a split's per-image predictions in predictions/; returns mean loss and accuracy.
        status.json shows the images done every log_seconds, as step rows by time."""
        shards = self.group.gather(loader.num_images)  # each rank predicts its own shard
        total = sum(shards)
        self.set_phase("testing" if split == "test" else "validating", total=total)
        shown = self.clock()

        def progress(done: int) -> None:
            nonlocal shown
            now = self.clock()
            if self.cfg.log_seconds and now - shown >= self.cfg.log_seconds:  # rank 0's share, scaled
                self.writer.set_status(phase_done=round(done * total / max(shards[0], 1)))
                shown = now

        arrays = self.trainer.predict(loader, progress)
        self.set_phase("saving")
        self.writer.save_predictions(split, epoch, **arrays)
        return {"loss": float(arrays["loss"].mean()), "acc": float((arrays["preds"] == arrays["labels"]).mean())}

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, completed_epochs: int, partial: dict | None, also_best: bool = False) -> None:
        """last.pt, and best.pt with the same bytes when this epoch improved on validation.

        last.pt goes first: a kill between the two writes leaves a last.pt whose best_epoch
        is its own epoch, from which a resume restores best.pt (repair_best_checkpoint)."""
        self.set_phase("saving")
        if not self.group.world.is_main:  # every rank holds the same weights; rank 0 writes them
            return
        state = {"format_version": runs.FORMAT_VERSION, **self.trainer.checkpoint_state(), "epoch": completed_epochs,
                 "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch, "partial_epoch": partial}
        self.writer.write_checkpoint(_serialized(state), best=also_best)

    def load_checkpoint(self, state: dict) -> tuple[int, dict | None]:
        self.trainer.load_checkpoint_state(state)
        self.best_val_acc, self.best_epoch = state["best_val_acc"], state["best_epoch"]
        return state["epoch"], state["partial_epoch"]

    def repair_best_checkpoint(self) -> None:
        """Make best.pt hold best_epoch again after a kill between last.pt and best.pt."""
        state = self.checkpoint
        if not self.best_epoch or state["epoch"] != self.best_epoch or state["partial_epoch"] is not None:
            return  # best.pt was written before this last.pt, so it already holds best_epoch
        try:  # as readers read it: a FIFO there hung the resume, a symlink was read through
            held = read_checkpoint(self.run_dir, runs.BEST_CHECKPOINT, ("epoch",))["epoch"]
        except ModelLoadError:  # missing, half-written or no regular file: restore it
            held = None
        if held != self.best_epoch:
            log.info("best.pt held epoch %s, not the best epoch %d: restoring it from last.pt", held, self.best_epoch)
            self.writer.write_checkpoint(_serialized(state), last=False, best=True)


def _serialized(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _installed_version(package: str) -> str:
    """A package's version from its installed metadata, without importing it: importing a
    torchvision built for another torch raises RuntimeError, and recording a version must
    never stop a run."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
    except Exception as e:  # unreadable metadata
        return f"unknown ({type(e).__name__})"


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only when a person is watching a terminal."""

    def __init__(self, epoch: int, epochs: int, batches: int, shown: bool = True):
        """shown: False for the ranks but 0 of a distributed run, which share the terminal."""
        self.enabled = shown and sys.stderr.isatty()
        self.epoch, self.epochs, self.batches = epoch, epochs, batches

    def update(self, batch: int, loss: float, rate: float) -> None:
        if self.enabled:
            filled = int(30 * batch / self.batches)
            sys.stderr.write(f"\repoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{batch}/{self.batches} loss {loss:.3f} {rate:,.0f} img/s ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
