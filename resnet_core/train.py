"""Train a CIFAR ResNet into one run folder: ``python -m resnet_core.train --help``.

Reads top to bottom: the config and its checks, device and precision choices, the run
(lock, data, model, the epoch loop, evaluation, checkpoints), then the command line.
Everything the trainer writes is described in resnet_core/runs.py; the dashboard only
reads it, so a run is the same whether it was launched from the UI or by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import io
import json
import logging
import math
import os
import platform
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from . import runs
from .config import (Plan, TrainConfig, add_config_arguments, apply_presets, config_errors, make_plan, parse_device,
                     plan_errors)
from .data import (Cifar10, DataError, DeviceLoader, channel_stats, dataset_present, load_cifar10, missing_data_message,
                   resolve_data_dir, split_train_val)
from .models import build_model, describe_model
from .schedule import Schedule
from .system import cpu_name

log = logging.getLogger("resnet_core.train")
# Tracebacks go to train.log only: the terminal and the dashboard get one line.
trace_log = logging.getLogger("resnet_core.trace")

PROG = "python -m resnet_core.train"
CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "schedule", "rng", "epoch", "step", "best_val_acc",
                   "best_epoch", "partial_epoch")


# ------------------------------------------------------------- device and precision

def resolve_device(device: str) -> torch.device:
    """auto picks CUDA, then Apple's MPS, then the CPU; an unavailable choice is an error."""
    parse_device(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda asked for, but PyTorch sees no CUDA GPU here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device} asked for, but only {torch.cuda.device_count()} CUDA GPUs exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps asked for, but MPS is not available here")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto: bf16 where the hardware computes it natively (CUDA, recent x86 CPUs), fp16
    with a grad scaler on other GPUs, fp32 on CPUs without bf16 units."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def resolve_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """channels_last suits cuDNN's tensor-core kernels and oneDNN on the CPU (measured
    here: ResNet-20 fp32 steps 24% faster); MPS gains nothing from it."""
    return device.type in ("cuda", "cpu") if channels_last is None else channels_last


def resolve_compile(compile: bool | None, device: torch.device) -> bool:
    """torch.compile fuses BN, ReLU and the residual add around each convolution. On CUDA
    it also removes most kernel launches, so auto turns it on there. On a CPU it made
    ResNet-20 steps about 10% faster here, but its first compile takes 40 s or more on
    two cores: worth it for long runs, not for quick ones, so it is opt-in there."""
    return device.type == "cuda" if compile is None else compile


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_name()


def peak_memory_mb(device: torch.device) -> float:
    """Peak device memory of this process: CUDA allocator peak, else peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "mps":
        return torch.mps.driver_allocated_memory() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------- the run

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
        return cls(torch.zeros((), device=device, dtype=torch.float64), torch.zeros((), device=device, dtype=torch.int64),
                   0, torch.zeros(num_classes * num_classes, device=device, dtype=torch.int64))

    def state(self) -> dict:
        return {"loss": self.loss.cpu(), "correct": self.correct.cpu(), "seen": self.seen, "confusion": self.confusion.cpu()}

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> "EpochSums":
        return cls(state["loss"].to(device), state["correct"].to(device), state["seen"], state["confusion"].to(device))


class Trainer:
    """Data on the device, the model, its optimizer and one training step; no files.

    The benchmark times exactly this, so its numbers are the trainer's own."""

    def __init__(self, cfg: TrainConfig, plan: Plan):
        self.cfg, self.plan = cfg, plan
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.channels_last = resolve_channels_last(cfg.channels_last, self.device)
        self.compile = resolve_compile(cfg.compile, self.device)
        self.step = 0

    def prepare_data(self, data: Cifar10) -> None:
        """The splits on the device, normalised by the training split's own statistics."""
        cfg = self.cfg
        self.classes = list(data.classes)
        train_idx, val_idx = split_train_val(len(data.train_labels), cfg.val_size, cfg.split_seed)
        if cfg.subset:
            train_idx = train_idx[:cfg.subset]
        self.stats = channel_stats(data.train_images[train_idx])

        def loader(images, labels, idx, train):
            return DeviceLoader.from_numpy(
                images[idx], labels[idx], idx.astype(np.int64), self.device,
                cfg.batch_size if train else max(cfg.batch_size, 500), train=train, seed=cfg.seed,
                stats=self.stats, channels_last=self.channels_last)

        self.train_loader = loader(data.train_images, data.train_labels, train_idx, True)
        self.test_loader = loader(data.test_images, data.test_labels, np.arange(len(data.test_labels)), False)
        # No validation split (--val-size 0, the paper preset): the test set is evaluated
        # after every epoch for monitoring, as the paper's Figure 6, never to pick weights.
        self.val_loader = loader(data.train_images, data.train_labels, val_idx, False) if cfg.val_size else None
        self.test_every_epoch = self.val_loader is None

    def build(self) -> None:
        cfg, plan = self.cfg, self.plan
        spe, total = plan.steps_per_epoch, plan.total_steps
        milestones = tuple(round(m * spe) for m in cfg.milestones) or (round(0.5 * total), round(0.75 * total))
        self.schedule = Schedule(cfg.schedule, cfg.lr, total, milestones, round(cfg.warmup_epochs * spe),
                                 cfg.warmup_mode, cfg.momentum)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.depth, cfg.block, cfg.shortcut, len(self.classes)).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Only training steps go through the compiled forward: evaluation (BN in eval
        # mode) stays eager rather than paying for a second compile.
        self.train_forward = torch.compile(self.model) if self.compile else self.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step at the schedule's lr and momentum; returns (loss, logits)."""
        lr, momentum = self.schedule.lr(self.step), self.schedule.momentum(self.step)
        for group in self.optimizer.param_groups:
            group["lr"], group["momentum"] = lr, momentum
        with self.autocast():
            logits = self.forward_for_training(x)
            loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.detach(), logits.detach()

    def forward_for_training(self, x: torch.Tensor) -> torch.Tensor:
        if self.train_forward is self.model:
            return self.model(x)
        try:
            return self.train_forward(x)
        except Exception as e:  # e.g. no C++ compiler for inductor: train eagerly instead
            log.warning("torch.compile failed (%s: %s); training without it", type(e).__name__, str(e)[:500])
            self.train_forward, self.compile = self.model, False
            return self.model(x)

    @torch.no_grad()
    def predict(self, loader: DeviceLoader) -> dict[str, np.ndarray]:
        """Per-image records of a split: indices, labels, preds, top-k classes and probabilities, loss."""
        self.model.eval()
        k = min(5, len(self.classes))
        parts: dict[str, list] = {name: [] for name in ("indices", "labels", "preds", "topk_classes", "topk_probs", "loss")}
        for idx, x, y in loader.epoch(0):
            # fp32 whatever the training precision: bf16 evaluation flipped 0.52% of the
            # top-1 test predictions of a ResNet-20 (1 epoch, 10k images, this CPU), and
            # galleries, matrices and best.pt rest on these.
            logits = self.model(x).float()
            top_probs, top_classes = logits.softmax(1).topk(k, dim=1)
            for name, value in (("indices", idx), ("labels", y), ("preds", top_classes[:, 0]),
                                ("topk_classes", top_classes), ("topk_probs", top_probs),
                                ("loss", F.cross_entropy(logits, y, reduction="none"))):
                parts[name].append(value.cpu())
        self.model.train()
        arrays = {name: torch.cat(values).numpy() for name, values in parts.items()}
        arrays["topk_probs"] = arrays["topk_probs"].astype(np.float32)
        arrays["loss"] = arrays["loss"].astype(np.float32)
        return arrays


class Run(Trainer):
    """A Trainer that writes one run folder: status, metrics, evaluations, checkpoints."""

    def __init__(self, cfg: TrainConfig, plan: Plan, data: Cifar10, run_dir: Path, stop: StopRequested,
                 checkpoint: dict | None = None):
        super().__init__(cfg, plan)
        self.data, self.run_dir, self.stop = data, run_dir, stop
        self.checkpoint = checkpoint  # last.pt's state on a resume, already checked by the caller
        # On a resume both files exist already: keep what they recorded.
        self.status: dict = runs.read_json(run_dir / runs.STATUS_FILE) or {}
        self.config_record: dict = runs.read_json(run_dir / runs.CONFIG_FILE) or {}
        self.pid_start = runs.process_start_time(os.getpid())  # lets readers tell us from a later process with our pid
        self.best_val_acc, self.best_epoch = -1.0, 0  # best_epoch 0: no validation result yet
        self.last_test: dict | None = None  # the latest per-epoch test evaluation (no validation split)

    # -- files --------------------------------------------------------------------
    def set_status(self, **changes) -> None:
        self.status.update(changes, format_version=runs.FORMAT_VERSION, pid=os.getpid(), pid_start=self.pid_start,
                           updated_at=time.time())
        runs.atomic_write_json(self.run_dir / runs.STATUS_FILE, self.status)

    def best_fields(self) -> dict:
        """status.json's view of the best validation epoch: null without a validation result."""
        return {"best_val_acc": self.best_val_acc if self.best_epoch else None, "best_epoch": self.best_epoch or None}

    def write_config(self, **resolved) -> None:
        record = self.config_record or {
            "format_version": runs.FORMAT_VERSION,
            "run_id": self.run_dir.name,
            "created": time.time(),
            "config": dataclasses.asdict(self.cfg),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "torchvision": _torchvision_version(), "numpy": np.__version__, "resnet_core": __version__},
        }
        record.setdefault("resolved", {}).update(
            device=str(self.device), device_name=device_name(self.device), precision=self.precision,
            channels_last=self.channels_last, compile=self.compile, **resolved)
        self.config_record = record
        runs.atomic_write_json(self.run_dir / runs.CONFIG_FILE, record)

    def append_metrics(self, row: dict) -> None:
        row["time"] = time.time()
        self.metrics_file.write(json.dumps(row) + "\n")
        self.metrics_file.flush()

    # -- the device queue -----------------------------------------------------------
    def acquire_device(self) -> bool:
        """Hold the device's lock for the rest of the process; wait in state queued.
        False if a stop was requested while waiting."""
        path = runs.device_lock_path(self.run_dir.parent, str(self.device))
        self.lock_file = open(path, "a+")
        announced = False
        while True:
            try:
                fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not announced:
                    log.info("another run holds %s; queued", self.device)
                    self.set_status(state="queued")
                    announced = True
                if self.stop:
                    return False
                time.sleep(0.5)

    # -- the main sequence ----------------------------------------------------------------
    def execute(self) -> int:
        """Run to the end; returns the process exit code. Never raises."""
        now = time.time()
        # A resumed run keeps the training time of its earlier sessions.
        earlier = _number(self.status.get("elapsed_before_s")) or 0.0
        started = _number(self.status.get("started_at"))
        if self.checkpoint is not None and started:
            end = _number(self.status.get("finished_at")) or _number(self.status.get("updated_at")) or started
            earlier += max(0.0, end - started)
        # Status before config: readers take a folder with config.json but no live status
        # for a crashed run, so that order must never be visible.
        self.set_status(state="queued", epoch=self.status.get("epoch", 0), step=self.status.get("step", 0),
                        total_epochs=self.plan.epochs, total_steps=self.plan.total_steps,
                        created_at=self.status.get("created_at", now), started_at=None, finished_at=None,
                        error=None, elapsed_before_s=earlier)
        self.write_config()
        try:
            if not self.acquire_device():
                self.set_status(state="stopped", finished_at=time.time())
                log.info("stopped while queued")
                return 0
            self.set_status(state="running", started_at=time.time())
            return self.train()
        except Diverged as e:
            log.error("%s", e)
            self.set_status(state="diverged", error=str(e), finished_at=time.time())
            return 3
        except Exception as e:
            message = str(e) if isinstance(e, (DataError, ValueError)) else f"{type(e).__name__}: {e}"
            log.error("run failed: %s (traceback in %s)", message, self.run_dir / runs.LOG_FILE)
            trace_log.error("%s", traceback.format_exc())
            self.set_status(state="failed", error=message, finished_at=time.time())
            return 1

    def record_setup(self) -> None:
        """Complete config.json once the data and model are known."""
        cfg, plan = self.cfg, self.plan
        summary = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(self.classes))
        self.config_record.update(classes=self.classes, model={"name": summary.name, "params": summary.params,
                                                                "macs": summary.macs})
        self.write_config(
            steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps, max_steps=cfg.max_steps,
            train_size=self.train_loader.num_images, val_size=plan.val_images,
            val_source="train" if self.val_loader is not None else None, test_every_epoch=self.test_every_epoch,
            test_size=self.test_loader.num_images, data_dir=str(resolve_data_dir(cfg.data_dir).resolve()),
            normalization=self.stats.as_record())

    def train(self) -> int:
        cfg, plan = self.cfg, self.plan
        self.prepare_data(self.data)
        self.data = None  # the host copy is no longer needed
        self.build()
        self.record_setup()
        start_epoch, partial = 0, None
        if self.checkpoint is not None:
            start_epoch, partial = self.load_checkpoint(self.checkpoint)
            log.info("resuming after epoch %d, step %d%s", start_epoch, self.step,
                     f" (mid-epoch at batch {partial['batch']})" if partial else "")
            self.repair_best_checkpoint()
        truncate_metrics(self.run_dir, self.step, start_epoch)
        self.metrics_file = runs.open_for_append(self.run_dir / runs.METRICS_FILE)
        self.set_status(epoch=start_epoch, step=self.step, **self.best_fields())
        log.info("training %s (%s, option %s) on %s (%s, %s, channels_last=%s): %d train / %s images, "
                 "%d steps in %d epochs", f"ResNet-{cfg.depth}", cfg.block, cfg.shortcut, self.device,
                 device_name(self.device), self.precision, self.channels_last, self.train_loader.num_images,
                 f"{self.val_loader.num_images} val" if self.val_loader else "no val (test monitored every epoch)",
                 plan.total_steps, plan.epochs)
        for epoch in range(start_epoch + 1, plan.epochs + 1):
            if not self.train_epoch(epoch, partial):
                self.set_status(state="stopped", finished_at=time.time())
                log.info("stopped at epoch %d, step %d; resume with --resume %s", epoch, self.step, self.run_dir)
                return 0
            partial = None
        # The final weights are the result; without a validation split the last epoch's
        # test evaluation already is the final one.
        test = self.last_test or self.evaluate(self.test_loader, "test", plan.epochs)
        self.append_metrics({"type": "test", "epoch": plan.epochs, "step": self.step,
                             "test_loss": test["loss"], "test_acc": test["acc"]})
        self.set_status(state="completed", test_acc=test["acc"], finished_at=time.time())
        best = (f", best validation {100 * self.best_val_acc:.2f}% (epoch {self.best_epoch})" if self.best_epoch
                else "")
        log.info("completed after %d steps: test accuracy %.2f%% (final weights)%s", self.step, 100 * test["acc"], best)
        return 0

    def train_epoch(self, epoch: int, partial: dict | None) -> bool:
        """One epoch (or its rest, after a mid-epoch resume). False if a stop was requested."""
        cfg, device = self.cfg, self.device
        num_classes = len(self.classes)
        batches = self.plan.steps_in_epoch(epoch)  # fewer than a full epoch where max_steps ends the run
        sums = EpochSums.from_state(partial["sums"], device) if partial else EpochSums.zeros(device, num_classes)
        start_batch = partial["batch"] if partial else 0
        elapsed_before = partial["seconds"] if partial else 0.0
        self.model.train()
        t_epoch = time.perf_counter()
        t_row, seen_row = t_epoch, 0
        row_loss = torch.zeros((), device=device)
        row_correct = torch.zeros((), device=device, dtype=torch.int64)
        progress = TerminalProgress(epoch, self.plan.epochs, batches)
        batch = start_batch
        for _, x, y in self.train_loader.epoch(epoch, start_batch, batches):
            lr = self.schedule.lr(self.step)
            loss, logits = self.train_step(x, y)
            batch += 1
            with torch.no_grad():
                pred = logits.argmax(1)
                n = y.numel()
                correct = (pred == y).sum()
                row_loss += loss * n
                row_correct += correct
                sums.loss += loss.double() * n
                sums.correct += correct
                sums.confusion += torch.bincount(y * num_classes + pred, minlength=num_classes ** 2)
            sums.seen += n
            seen_row += n
            if self.step % cfg.log_every == 0 or batch == batches or self.stop:
                now = time.perf_counter()
                mean_loss = row_loss.item() / seen_row
                if not math.isfinite(mean_loss):
                    raise Diverged(f"loss became {mean_loss} at step {self.step} (epoch {epoch}); "
                                   f"try a lower learning rate or a warm-up")
                rate = seen_row / max(now - t_row, 1e-9)
                self.append_metrics({"type": "step", "epoch": epoch, "step": self.step, "loss": mean_loss,
                                     "acc": row_correct.item() / seen_row, "lr": lr, "images_per_s": rate})
                self.set_status(step=self.step)
                progress.update(batch, mean_loss, rate)
                t_row, seen_row = now, 0
                row_loss.zero_()
                row_correct.zero_()
            if self.stop and batch < batches:
                progress.close()
                seconds = elapsed_before + time.perf_counter() - t_epoch
                self.save_checkpoint(epoch - 1, {"epoch": epoch, "batch": batch, "sums": sums.state(), "seconds": seconds})
                return False
        progress.close()
        self.finish_epoch(epoch, sums, elapsed_before + time.perf_counter() - t_epoch)
        return not self.stop or epoch == self.plan.epochs

    def finish_epoch(self, epoch: int, sums: EpochSums, seconds: float) -> None:
        train_loss = sums.loss.item() / sums.seen
        if not math.isfinite(train_loss):
            raise Diverged(f"loss became {train_loss} in epoch {epoch}; try a lower learning rate or a warm-up")
        runs.save_predictions(self.run_dir, "train", epoch,
                              confusion=sums.confusion.view(len(self.classes), -1).cpu().numpy())
        val = self.evaluate(self.val_loader, "val", epoch) if self.val_loader is not None else None
        row = {"type": "epoch", "epoch": epoch, "step": self.step, "train_loss": train_loss,
               "train_acc": sums.correct.item() / sums.seen, "val_loss": val and val["loss"],
               "val_acc": val and val["acc"], "lr": self.schedule.lr(self.step - 1), "epoch_seconds": seconds,
               "images_per_s": sums.seen / max(seconds, 1e-9), "peak_memory_mb": peak_memory_mb(self.device)}
        if self.test_every_epoch:  # monitoring only: never compared, never used to keep weights
            self.last_test = self.evaluate(self.test_loader, "test", epoch)
            row.update(test_loss=self.last_test["loss"], test_acc=self.last_test["acc"])
        self.append_metrics(row)
        improved = val is not None and val["acc"] > self.best_val_acc
        if improved:
            self.best_val_acc, self.best_epoch = val["acc"], epoch
        self.save_checkpoint(epoch, None, also_best=improved)
        self.set_status(epoch=epoch, step=self.step, **self.best_fields())
        shown = (f"val loss {val['loss']:.4f} acc {100 * val['acc']:.2f}%" if val else
                 f"test (monitoring) loss {self.last_test['loss']:.4f} acc {100 * self.last_test['acc']:.2f}%")
        log.info("epoch %d/%d: train loss %.4f acc %.2f%% | %s | %.1f s", epoch, self.plan.epochs, train_loss,
                 100 * sums.correct.item() / sums.seen, shown, seconds)

    def evaluate(self, loader: DeviceLoader, split: str, epoch: int) -> dict:
        """Record a split's per-image predictions in predictions/; returns mean loss and accuracy."""
        arrays = self.predict(loader)
        runs.save_predictions(self.run_dir, split, epoch, **arrays)
        return {"loss": float(arrays["loss"].mean()), "acc": float((arrays["preds"] == arrays["labels"]).mean())}

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, completed_epochs: int, partial: dict | None, also_best: bool = False) -> None:
        """last.pt, and best.pt with the same bytes when this epoch improved on validation.

        last.pt goes first: a kill between the two writes leaves a last.pt whose best_epoch
        is its own epoch, from which a resume restores best.pt (repair_best_checkpoint)."""
        state = {
            "format_version": runs.FORMAT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "schedule": {"step": self.step, **dataclasses.asdict(self.schedule)},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []},
            "epoch": completed_epochs,
            "step": self.step,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "partial_epoch": partial,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        # Atomic writes create a fresh file and rename it over the old name, so a symlink
        # planted at last.pt is replaced, never followed out of the run folder.
        runs.atomic_write_bytes(self.run_dir / runs.LAST_CHECKPOINT, buffer.getvalue())
        if also_best:
            runs.atomic_write_bytes(self.run_dir / runs.BEST_CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self, state: dict) -> tuple[int, dict | None]:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.step, self.best_val_acc, self.best_epoch = state["step"], state["best_val_acc"], state["best_epoch"]
        return state["epoch"], state["partial_epoch"]

    def repair_best_checkpoint(self) -> None:
        """Make best.pt hold best_epoch again after a kill between last.pt and best.pt."""
        state = self.checkpoint
        if not self.best_epoch or state["epoch"] != self.best_epoch or state["partial_epoch"] is not None:
            return  # best.pt was written before this last.pt, so it already holds best_epoch
        try:
            held = torch.load(self.run_dir / runs.BEST_CHECKPOINT, map_location="cpu", weights_only=True)["epoch"]
        except Exception:  # missing or half-written: restore it
            held = None
        if held != self.best_epoch:
            log.info("best.pt held epoch %s, not the best epoch %d: restoring it from last.pt", held, self.best_epoch)
            buffer = io.BytesIO()
            torch.save(state, buffer)
            runs.atomic_write_bytes(self.run_dir / runs.BEST_CHECKPOINT, buffer.getvalue())


def truncate_metrics(run_dir: Path, step: int, epoch: int) -> None:
    """Keep only the metric rows a checkpoint at (step, epoch) covers, and drop the
    prediction files of later epochs: the history a resume continues without duplicates."""
    rows = runs.read_metrics(run_dir)
    kept = [r for r in rows if (r.get("type") == "step" and _number(r.get("step"), -1) <= step)
            or (r.get("type") == "epoch" and _number(r.get("epoch"), -1) <= epoch)]
    if len(kept) != len(rows) or os.path.lexists(run_dir / runs.METRICS_FILE):
        runs.atomic_write_bytes(run_dir / runs.METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept).encode())
    for split in runs.SPLITS:
        for e in runs.recorded_epochs(run_dir, split):
            if e > epoch:
                runs.prediction_path(run_dir, split, e).unlink()


def _torchvision_version() -> str:
    try:
        import torchvision

        return torchvision.__version__
    except ImportError:
        return "missing"


def _number(value, default: float | None = None) -> float | None:
    """A JSON number (not a bool), else default: run files may hold anything."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _download_progress():
    """Download progress on stderr, every 10%: the run folder does not exist yet."""
    last = [-1]

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else -1
        if pct != last[0] and pct % 10 == 0:
            print(f"downloading CIFAR-10: {pct}%", file=sys.stderr, flush=True)
            last[0] = pct

    return report


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only when a person is watching a terminal."""

    def __init__(self, epoch: int, epochs: int, batches: int):
        self.enabled = sys.stderr.isatty()
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


# --------------------------------------------------------------------- command line

class Refused(Exception):
    """Input that cannot run: one line on stderr, exit code 2, nothing written."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists every flag)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train a CIFAR ResNet of He et al. (2016) into one run folder.")
    add_config_arguments(p)  # every training option, from TrainConfig
    p.add_argument("--run-dir", default=None, help="write into this new or empty folder instead of a fresh one under --runs-dir")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a stopped, failed or killed run")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve and check everything, print the plan (last line JSON), write nothing")
    return p


def parse(argv: list[str] | None, more_arguments=None) -> tuple[TrainConfig, argparse.Namespace, set[str]]:
    """The config as typed (defaults elsewhere), the parsed flags, and the config fields
    given on the command line, which presets leave alone; more_arguments(parser) may add
    flags (the benchmark's)."""
    parser = build_parser()
    if more_arguments:
        more_arguments(parser)
    args = parser.parse_args(argv)
    typed = {f.name for f in dataclasses.fields(TrainConfig)} & set(vars(args))
    return TrainConfig(**{name: getattr(args, name) for name in typed}), args, typed


def load_data(cfg: TrainConfig) -> Cifar10:
    """CIFAR-10 for cfg, or Refused with one line naming the file and what is wrong."""
    if not cfg.download and not dataset_present(cfg.data_dir):
        raise Refused(f"{missing_data_message(resolve_data_dir(cfg.data_dir), 'no batch files')} Or add --download.")
    try:
        return load_cifar10(cfg.data_dir, download=cfg.download, progress=_download_progress())
    except (DataError, OSError) as e:
        raise Refused(str(e)) from None


def resolve(cfg: TrainConfig, typed: set[str], data: Cifar10, fresh: bool = True) -> tuple[TrainConfig, Plan]:
    """The config the run uses (presets applied for a fresh run; a resumed run's record
    already holds them) and its plan, or Refused when it cannot run on this data."""
    if fresh:
        cfg = apply_presets(cfg, typed, len(data.train_labels))
    problems = config_errors(cfg) or plan_errors(cfg, len(data.train_labels))
    if problems:
        raise Refused("; ".join(problems.values()))
    return cfg, make_plan(cfg, len(data.train_labels))


def check_config(cfg: TrainConfig) -> None:
    """What can be judged before reading 180 MB of data: the fields, and the device.
    Milestones and warm-up wait for the plan: a preset may still set the run's length."""
    problems = {k: v for k, v in config_errors(cfg).items() if k not in ("milestones", "warmup_epochs")}
    if problems:
        raise Refused("; ".join(problems.values()))
    try:
        resolve_device(cfg.device)  # e.g. --device cuda on a machine without one
    except ValueError as e:
        raise Refused(str(e)) from None


def check_runs_dir(path: Path) -> None:
    """Refused unless path is, or can become, a folder this process can write in."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Refused(f"--runs-dir {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(f"--runs-dir {path}: {existing} is not writable")


def check_new_run_dir(path: Path) -> None:
    """--run-dir must be new or empty (the dashboard's console.log aside)."""
    if os.path.lexists(path) and not path.is_dir():
        raise Refused(f"--run-dir {path} is not a folder")
    if path.is_dir():
        if (path / runs.CONFIG_FILE).exists():
            raise Refused(f"--run-dir {path} already holds a run; use --resume to continue it")
        if any(p.name != runs.CONSOLE_FILE for p in path.iterdir()):
            raise Refused(f"--run-dir {path} is not empty")
    check_runs_dir(path.parent)


def check_resumable(run_dir: Path) -> tuple[TrainConfig, dict | None]:
    """The recorded config and last.pt's state of a run that can be resumed, or Refused
    naming the file and what is wrong. Reads only: a refused resume changes nothing."""
    path = run_dir / runs.CONFIG_FILE
    if not run_dir.is_dir():
        raise Refused(f"--resume: {run_dir} is not a folder")
    if not os.path.lexists(path):
        raise Refused(f"--resume: {run_dir} is not a run folder (no {runs.CONFIG_FILE})")
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # a directory, unreadable bytes, bad JSON
        raise Refused(f"--resume: {path} is unreadable: {e}") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise Refused(f"--resume: {path} is not a run record (no 'config' object)")
    version = record.get("format_version")
    if version != runs.FORMAT_VERSION:
        raise Refused(f"--resume: {path} is run folder format {version!r} and this trainer writes "
                      f"{runs.FORMAT_VERSION}; a folder never mixes two versions, so start a new run")
    try:
        cfg = config_from_record(record["config"])
    except (TypeError, ValueError) as e:
        raise Refused(f"--resume: {path}: {e}") from None
    recorded_data = (record.get("resolved") or {}).get("data_dir")
    if isinstance(recorded_data, str) and Path(recorded_data).is_dir():
        cfg.data_dir = recorded_data  # absolute: a resume from another working folder reads the same data
    info = runs.read_run(run_dir)
    state = info.state if info is not None else "unknown"
    if info is not None and (info.problem or info.read_only):  # e.g. a status.json that cannot say who runs it
        raise Refused(f"--resume: {run_dir} cannot be resumed: {info.problem or info.note}")
    if state in runs.ACTIVE_STATES:
        raise Refused(f"--resume: {run_dir} is still {state} (pid {info.status.get('pid')})")
    if state == "completed":
        raise Refused(f"--resume: {run_dir} already completed")
    for name in (runs.METRICS_FILE, runs.LOG_FILE, runs.PREDICTIONS_DIR):  # appended to, or written into
        if (run_dir / name).is_symlink():
            raise Refused(f"--resume: {run_dir / name} is a symlink; refusing to write through it")
    checkpoint = run_dir / runs.LAST_CHECKPOINT
    if not os.path.lexists(checkpoint):
        return cfg, None  # stopped or killed before its first checkpoint: start it afresh
    try:
        state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a checkpoint, a directory...
        raise Refused(f"--resume: {checkpoint.name} is corrupt: {type(e).__name__}: {str(e)[:200]}") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state_dict, dict) or k not in state_dict]
    if missing:
        raise Refused(f"--resume: {checkpoint.name} is corrupt: it lacks {', '.join(missing)}")
    classes = record.get("classes")
    if not same_shapes(state_dict["model"], cfg, len(classes) if isinstance(classes, list) else 10):
        raise Refused(f"--resume: {checkpoint.name} is corrupt: its weights are not those of the recorded "
                      f"ResNet-{cfg.depth} ({cfg.block}, shortcut {cfg.shortcut})")
    return cfg, state_dict


def same_shapes(weights, cfg: TrainConfig, num_classes: int) -> bool:
    """Whether a checkpoint's model weights fit the model cfg builds (shapes only, no memory)."""
    try:
        with torch.device("meta"):
            model = build_model(cfg.depth, cfg.block, cfg.shortcut or None, num_classes)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        return {k: tuple(v.shape) for k, v in weights.items()} == expected
    except (AttributeError, TypeError, ValueError):  # not a dict of tensors, or a config no model fits
        return False


def config_from_record(values: dict) -> TrainConfig:
    """A TrainConfig from config.json's "config", each field checked against its type."""
    default = TrainConfig()
    out = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in values:
            continue
        value, expected = values[f.name], getattr(default, f.name)
        if isinstance(expected, bool) or expected is None:
            ok = value is None or isinstance(value, bool) or (f.name == "data_dir" and isinstance(value, str))
        elif isinstance(expected, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(expected, list):
            ok = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        else:
            ok = isinstance(value, type(expected)) and not isinstance(value, bool)
        if not ok:
            raise TypeError(f"field {f.name!r} holds {value!r}, not a {type(expected).__name__}")
        out[f.name] = value
    return TrainConfig(**out)


def dry_run_report(cfg: TrainConfig, plan: Plan, data: Cifar10) -> dict:
    model = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(data.classes))
    return {"epochs": plan.epochs, "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
            "train_images": plan.train_images, "val_images": plan.val_images, "test_images": len(data.test_labels),
            "test_every_epoch": plan.val_images == 0,
            "model": {"name": model.name, "params": model.params, "macs": model.macs},
            "config": dataclasses.asdict(cfg)}


def print_dry_run(cfg: TrainConfig, plan: Plan, data: Cifar10) -> None:
    report = dry_run_report(cfg, plan, data)
    model = report["model"]
    print(f"{model['name']} ({cfg.block} blocks, shortcut {cfg.shortcut}): {model['params']:,} parameters, "
          f"{model['macs']:,} MACs per image")
    print(plan.describe() + f" · {report['test_images']:,} test images")
    spe = plan.steps_per_epoch
    schedule = f"{cfg.schedule} from lr {cfg.lr:g}, batch {cfg.batch_size}, momentum {cfg.momentum:g}, " \
               f"weight decay {cfg.weight_decay:g}"
    if cfg.schedule == "multistep":
        drops = [round(m * spe) for m in cfg.milestones] or [round(0.5 * plan.total_steps), round(0.75 * plan.total_steps)]
        schedule += f", lr /10 at steps {', '.join(f'{d:,}' for d in drops)}"
    if cfg.warmup_epochs:
        schedule += f", {cfg.warmup_mode} warm-up for {round(cfg.warmup_epochs * spe):,} steps"
    print(schedule)
    print(json.dumps(report))


def setup_logging(run_dir: Path) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    file_handler = logging.StreamHandler(runs.open_for_append(run_dir / runs.LOG_FILE))
    file_handler.setFormatter(fmt)
    root = logging.getLogger("resnet_core")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    trace_log.propagate = False
    trace_log.handlers.clear()
    trace_log.addHandler(file_handler)


def claim(run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Become the one writer of run_dir until stack closes, or Refused if a trainer is."""
    try:
        stack.callback(os.close, runs.claim_run_dir(run_dir))
    except runs.RunBusy as e:
        raise Refused(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    cfg, args, typed = parse(argv)
    with contextlib.ExitStack() as held:  # the claim on the run folder, released on return
        try:
            checkpoint = None
            if args.resume:
                run_dir = Path(args.resume)
                if run_dir.is_dir():  # else check_resumable says what it is
                    claim(run_dir, held)  # before reading it: two resumes at once never both run
                cfg, checkpoint = check_resumable(run_dir)
            check_config(cfg)
            if not args.resume:
                run_dir = Path(args.run_dir) if args.run_dir else None
                if run_dir is not None:
                    check_new_run_dir(run_dir)
                else:
                    check_runs_dir(Path(cfg.runs_dir))
            if args.dry_run and cfg.download and not dataset_present(cfg.data_dir):
                raise Refused("--dry-run writes nothing, so it does not download: drop --dry-run, or --download first")
            data = load_data(cfg)
            cfg, plan = resolve(cfg, typed, data, fresh=not args.resume)
            if args.dry_run:
                print_dry_run(cfg, plan, data)
                return 0
            if run_dir is None:
                try:
                    run_dir = runs.new_run_dir(Path(cfg.runs_dir), cfg.name)
                except OSError as e:
                    raise Refused(f"--runs-dir {cfg.runs_dir}: {e.strerror or e}") from None
            elif not args.resume:
                run_dir.mkdir(parents=True, exist_ok=True)
            if not args.resume:
                claim(run_dir, held)  # a resume clicked while this run starts is refused
        except Refused as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        stop = StopRequested()
        stop.install()
        setup_logging(run_dir)
        log.info("run folder: %s", run_dir)
        if args.resume:  # no trainer writes here now (claimed above): temp files are a kill's leftovers
            for path in runs.remove_stale_temp_files(run_dir):
                log.info("removed %s, left by an interrupted write", path.relative_to(run_dir))
        return Run(cfg, plan, data, run_dir, stop, checkpoint).execute()


if __name__ == "__main__":
    sys.exit(main())
