"""One training run into its run folder: the device queue, the epoch loop, evaluations
and checkpoints (status.json and config.json: resnet_core/run_status.py; the format:
resnet_core/runs/folder_format.py).

:meth:`Run.execute` reads top to bottom: status queued, the device lock, data and model,
then :meth:`Run.train_epoch` per epoch and :meth:`Run.finish_epoch` after it (metrics,
predictions, checkpoints), then the final test.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import distributed, placement, runs
from .checkpoints import checkpoint_bytes, repair_best_checkpoint
from .cifar import CifarData
from .config import Plan, TrainConfig
from .data import DeviceLoader
from .device import device_name, peak_memory_mb
from .dynamics_recorder import DynamicsRecorder
from .distributed import Group, World
from .epoch_totals import EpochSums, StepRows, count_step
from .runs import model_name
from .run_status import Diverged, RunStatus, nodes
from .step import Trainer
from .stop_request import StopRequested
from .train_log import TerminalProgress
from .usage import UsageRecorder, UsageSampler

log = logging.getLogger("resnet_core.train")
SYSTEM_ROW_MIN_S = 2.0  # system rows come every log_seconds, but never more often than this


@dataclass
class Prepared:
    """A run ready to start (train.prepare): its config, plan, data and claimed folder; on a
    resume last.pt's state, already checked, and the settings the resume changed,
    {field: [old, new]} (config.resume_config), recorded in config.json."""

    cfg: TrainConfig
    plan: Plan
    data: CifarData
    run_dir: Path
    checkpoint: dict | None = None
    changes: dict[str, list] = field(default_factory=dict)
    labels: dict = field(default_factory=dict)  # a new run's launch tags and note (train_checks.check_labels)


class Run:
    """One run of a :class:`Trainer` into its folder: status, metrics, evaluations, checkpoints."""

    def __init__(self, prepared: Prepared, stop: StopRequested, device_slots: int = 1,
                 clock: Callable[[], float] = time.perf_counter, group: Group | None = None,
                 device_lock: bool = True):
        """clock: seconds for the row and progress cadence and the durations recorded (a
        test passes a fake one). group: the ranks of a distributed run (rank 0 alone writes
        the folder). device_lock: take the device's lock in the runs folder (see
        placement); a distributed run's ranks never do."""
        self.cfg, self.plan, self.data = prepared.cfg, prepared.plan, prepared.data
        self.stop, self.clock = stop, clock
        self.group = group or Group(World())
        self.device_lock = device_lock and not self.group.world.distributed
        self.trainer: Trainer | None = None  # built on the device acquire_device takes
        self.dynamics: DynamicsRecorder | None = None  # the training images' record, built with the data
        run_dir = prepared.run_dir
        self.writer = runs.RunWriter(run_dir) if self.group.world.is_main else runs.PeerWriter(run_dir)
        self.status = RunStatus(self.writer, self.cfg, prepared.labels)
        self.checkpoint = prepared.checkpoint  # last.pt's state on a resume, already checked by the caller
        self.changes = prepared.changes
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

    # -- the main sequence ----------------------------------------------------------------
    def execute(self) -> int:
        """Run to the end; returns the process exit code. Never raises."""
        try:
            self.status.start_queued(self.plan, self.checkpoint, self.changes)
        except OSError as e:  # e.g. a resume while the folder is still unwritable
            log.error("run failed: cannot write %s: %s%s", e.filename, e.strerror, self.status.resume_hint())
            return 1
        with self.writer.heartbeats():
            try:
                return self.queue_and_train()
            except Exception as e:
                return self.status.failure_exit(e, self.group)

    def queue_and_train(self) -> int:
        """Wait for a device and train: the exit code."""
        if not self.acquire_device():
            self.status.set_phase(None, state="stopped", finished_at=time.time())
            log.info("stopped while queued")
            return 0
        self.status.set_phase("loading data", state="running", started_at=time.time())
        return self.train()

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
        self.status.write_config(device=str(device), device_name=device_name(device), precision=t.precision,
                                 channels_last=t.channels_last, compile=t.compile, world_size=world.size,
                                 nodes=nodes(ranks))
        return True

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
        if self.data.train_files:  # an image folder's: each image's file, for the galleries
            self.writer.save_data_files(self.data.train_files, self.data.test_files)
        folder = self.data.source
        self.data = None  # the host copy is no longer needed
        self.dynamics = DynamicsRecorder(t.train_indices, t.device)
        self.writer.save_training_images(t.train_indices, t.train_labels, t.original_train_labels)
        self.status.set_phase("building model")
        t.build()
        self.status.record_setup(self.plan, t, test_size=sum(self.group.gather(t.test_loader.num_images)),
                                 folder=folder)
        start_epoch, partial = 0, None
        if self.checkpoint is not None:
            start_epoch, partial = self.load_checkpoint(self.checkpoint)
            log.info("resuming after epoch %d, step %d%s", start_epoch, t.step,
                     f" (mid-epoch at batch {partial['batch']})" if partial else "")
            repair_best_checkpoint(self.writer, self.checkpoint)
        self.writer.set_status(epoch=start_epoch, step=t.step, **self.best_fields())
        log.info("training %s (%s, option %s) on %s (%s, %s, channels_last=%s): %d train / %s images, "
                 "%d step%s in %d epoch%s", model_name(cfg.depth, cfg.shortcut, cfg.preact), cfg.block, cfg.shortcut,
                 t.device,
                 device_name(t.device), t.precision, t.channels_last, t.train_loader.num_images,
                 f"{plan.val_images} val" if t.val_loader else "no val (test monitored every epoch)",
                 plan.total_steps, "" if plan.total_steps == 1 else "s", plan.epochs, "" if plan.epochs == 1 else "s")
        for epoch in range(start_epoch + 1, plan.epochs + 1):
            self.epoch_now = epoch
            if not self.train_epoch(epoch, partial):
                self.status.set_phase(None, state="stopped", finished_at=time.time())
                log.info("stopped at epoch %d, step %d; resume with --resume %s", epoch, t.step, self.run_dir)
                return 0
            partial = None
        # The final weights are the result; without a validation split the last epoch's
        # test evaluation already is the final one.
        test = self.last_test or self.evaluate(t.test_loader, "test", plan.epochs)
        self.writer.append_metrics({"type": "test", "epoch": plan.epochs, "step": t.step,
                                    "test_loss": test["loss"], "test_acc": test["acc"]})
        self.status.set_phase(None, state="completed", test_acc=test["acc"], finished_at=time.time())
        best = f", best validation {100 * self.best_val_acc:.2f}% (epoch {self.best_epoch})" if self.best_epoch else ""
        log.info("completed after %d steps: test accuracy %.2f%% (final weights)%s", t.step, 100 * test["acc"], best)
        return 0

    def train_epoch(self, epoch: int, partial: dict | None) -> bool:
        """One epoch (or its rest, after a mid-epoch resume). False if a stop was requested."""
        t, group = self.trainer, self.group
        batches = self.plan.steps_in_epoch(epoch)  # fewer than a full epoch where max_steps ends the run
        sums = self.start_epoch(partial)
        batch, seconds_before = (partial["batch"], partial["seconds"]) if partial else (0, 0.0)
        if self.first_step_s is not None:  # else the model is still building until its first step ends
            self.status.set_phase("training")
        t.model.train()
        started = self.clock()
        rows = StepRows(t.device, started)
        progress = TerminalProgress(epoch, self.plan.epochs, batches, shown=group.world.is_main)
        for idx, x, y in t.train_loader.epoch(epoch, batch, batches):
            lr = t.schedule.lr(t.step)
            loss, logits = t.train_step(x, y)
            batch += 1
            count_step(loss, logits, y, sums, rows)
            self.dynamics.add(idx, logits, y)
            stopping, due = self.stop_and_row_due(rows, batch == batches)
            if due or stopping:
                row = self.write_step_row(epoch, lr, rows, started)
                progress.update(batch, row["loss"], row["images_per_s"])
            if stopping and batch < batches:
                progress.close()
                self.save_partial_epoch(epoch, batch, sums, seconds_before + self.clock() - started)
                return False
        progress.close()
        self.finish_epoch(epoch, sums.summed(group), seconds_before + self.clock() - started)
        return not group.any(bool(self.stop))[0] or epoch == self.plan.epochs

    def start_epoch(self, partial: dict | None) -> EpochSums:
        """The epoch's totals and record of the training images from nothing, or carried on
        from a mid-epoch checkpoint. Both are every rank's (combined at the stop): rank 0
        alone carries them on. A checkpoint from before the record holds none of it: the
        resumed epoch records only its rest."""
        carried = partial is not None and self.group.world.is_main
        self.dynamics.start(partial.get("dynamics") if carried else None)
        if carried:
            return EpochSums.from_state(partial["sums"], self.trainer.device)
        return EpochSums.zeros(self.trainer.device, len(self.trainer.classes))

    def stop_and_row_due(self, rows: StepRows, last_batch: bool) -> list[bool]:
        """Whether to stop after this step, and whether a step row is due.

        A row by count or by time, whichever comes first: at 20 steps a row, the first
        point of a loss curve came 50-84 s after launch. Reading the clock costs no sync;
        the row's .item() is the one device sync, so it happens only when a row is due.
        In a distributed run the ranks agree on both flags (a CPU all-reduce, no device
        sync): a stop on any rank stops all after this step, and rank 0's clock sets rows."""
        now, log_seconds = self.clock(), self.cfg.log_seconds
        first = self.first_step_s is None
        return self.group.any(bool(self.stop), first or self.trainer.step % self.cfg.log_every == 0 or last_batch
                              or bool(log_seconds and now - rows.since >= log_seconds))

    def write_step_row(self, epoch: int, lr: float, rows: StepRows, started: float) -> dict:
        """The step row over the steps since the last (metrics.jsonl), and the step in
        status.json; the first step's also ends "building model". Diverged on a loss that
        is no number."""
        t = self.trainer
        seen, mean_loss, acc = rows.take(self.group)  # the row over the global batch
        now = self.clock()  # after the sync: the device has done the row's steps
        if not math.isfinite(mean_loss):
            raise Diverged(f"loss became {mean_loss} at step {t.step} (epoch {epoch}); "
                           f"try a lower learning rate or a warm-up")
        row = {"type": "step", "epoch": epoch, "step": t.step, "loss": mean_loss, "acc": acc, "lr": lr,
               "images_per_s": seen / max(now - rows.since, 1e-9)}
        self.writer.append_metrics(row)
        if self.first_step_s is None:
            self.first_step_s = now - started
            self.status.set_phase("training", step=t.step, first_step_s=self.first_step_s)
        else:
            self.writer.set_status(step=t.step)
        rows.since = now
        return row

    def save_partial_epoch(self, epoch: int, batch: int, sums: EpochSums, seconds: float) -> None:
        """A stop mid-epoch: last.pt after the previous epoch, with this one's batches done."""
        partial = {"epoch": epoch, "batch": batch, "sums": sums.summed(self.group).state(), "seconds": seconds,
                   "dynamics": self.dynamics.state(self.group)}
        self.save_checkpoint(epoch - 1, partial)

    def finish_epoch(self, epoch: int, sums: EpochSums, seconds: float) -> None:
        t = self.trainer
        train_loss = sums.loss.item() / sums.seen
        if not math.isfinite(train_loss):
            raise Diverged(f"loss became {train_loss} in epoch {epoch}; try a lower learning rate or a warm-up")
        self.writer.save_predictions("train", epoch, confusion=sums.confusion.view(len(t.classes), -1).cpu().numpy())
        self.writer.save_dynamics(epoch, *self.dynamics.take(self.group))
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
        self.status.set_phase("testing" if split == "test" else "validating", total=total)
        shown = self.clock()

        def progress(done: int) -> None:
            nonlocal shown
            now = self.clock()
            if self.cfg.log_seconds and now - shown >= self.cfg.log_seconds:  # rank 0's share, scaled
                self.writer.set_status(phase_done=round(done * total / max(shards[0], 1)))
                shown = now

        arrays = self.trainer.predict(loader, progress)
        self.status.set_phase("saving")
        self.writer.save_predictions(split, epoch, **arrays)
        return {"loss": float(arrays["loss"].mean()), "acc": float((arrays["preds"] == arrays["labels"]).mean())}

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, completed_epochs: int, partial: dict | None, also_best: bool = False) -> None:
        """last.pt, and best.pt with the same bytes when this epoch improved on validation.

        last.pt goes first: a kill between the two writes leaves a last.pt whose best_epoch
        is its own epoch, from which a resume restores best.pt (repair_best_checkpoint)."""
        self.status.set_phase("saving")
        if not self.group.world.is_main:  # every rank holds the same weights; rank 0 writes them
            return
        self.writer.write_checkpoint(checkpoint_bytes(self.trainer.checkpoint_state(), completed_epochs, partial,
                                                      self.best_val_acc, self.best_epoch), best=also_best)

    def load_checkpoint(self, state: dict) -> tuple[int, dict | None]:
        self.trainer.load_checkpoint_state(state)
        self.best_val_acc, self.best_epoch = state["best_val_acc"], state["best_epoch"]
        return state["epoch"], state["partial_epoch"]

