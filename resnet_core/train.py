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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from . import runs
from .data import DataError, DeviceLoader, dataset_present, load_cifar10, missing_data_message, resolve_data_dir, split_train_val
from .models import BLOCKS, SHORTCUTS, blocks_per_stage, build_model, describe_model
from .schedule import SCHEDULES, WARMUPS, Schedule
from .system import cpu_name

log = logging.getLogger("resnet_core.train")

DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PAPER_BATCH_SIZE = 128
CIFAR10_TRAIN_IMAGES = 50_000
PAPER_ITERATIONS = 64_000
PAPER_LR_DROPS = (32_000, 48_000)
PAPER_WARMUP_ITERATIONS = 400  # ResNet-110 and deeper start at lr 0.01 (paper, section 4.2)


@dataclass
class TrainConfig:
    depth: int = 20
    block: str = "basic"
    shortcut: str = "A"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    milestones: list[float] = field(default_factory=list)  # multistep, in epochs; [] = 50% and 75%
    warmup_epochs: float = 0.0
    warmup_mode: str = "linear"  # linear ramp, or constant lr/10 (the paper's ResNet-110)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None  # None: where the device benefits
    compile: bool | None = None  # torch.compile the training forward; None: on CUDA only
    data_dir: str | None = None
    runs_dir: str = "checkpoints"
    name: str = ""
    val_size: int = 5000
    subset: int = 0  # train on the first N images of the training split; 0 = all
    preset: str = ""
    download: bool = False
    log_every: int = 20  # steps between step rows in metrics.jsonl


def paper_preset(depth: int, steps_per_epoch: int) -> dict:
    """The paper's recipe, with its iteration counts turned into epochs of this split."""
    epochs = round(PAPER_ITERATIONS / steps_per_epoch)
    preset = dict(batch_size=PAPER_BATCH_SIZE, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep",
                  val_size=5000, epochs=epochs, milestones=[m / steps_per_epoch for m in PAPER_LR_DROPS],
                  warmup_epochs=0.0, warmup_mode="linear")
    if depth >= 110:
        preset.update(warmup_epochs=PAPER_WARMUP_ITERATIONS / steps_per_epoch, warmup_mode="constant")
    return preset


def config_errors(cfg: TrainConfig) -> dict[str, str]:
    """Per-field messages for a config that cannot run; empty when it can."""
    errors: dict[str, str] = {}

    def check(name: str, ok: bool, message: str) -> None:
        if not ok and name not in errors:
            errors[name] = message

    check("block", cfg.block in BLOCKS, f"unknown block type {cfg.block!r}; valid: {', '.join(BLOCKS)}")
    check("shortcut", cfg.shortcut in SHORTCUTS, f"unknown shortcut {cfg.shortcut!r}; valid: {', '.join(SHORTCUTS)}")
    if "block" not in errors:
        try:
            blocks_per_stage(cfg.depth, cfg.block)
        except ValueError as e:
            errors["depth"] = str(e)
    check("epochs", cfg.epochs >= 1, "epochs must be at least 1")
    check("batch_size", cfg.batch_size >= 1, "batch size must be at least 1")
    check("lr", math.isfinite(cfg.lr) and cfg.lr > 0, "learning rate must be a positive number")
    check("momentum", 0 <= cfg.momentum < 1, "momentum must lie in [0, 1)")
    check("weight_decay", cfg.weight_decay >= 0, "weight decay cannot be negative")
    check("schedule", cfg.schedule in SCHEDULES, f"unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if "epochs" not in errors:  # both are judged against a valid run length
        check("milestones", all(0 < m <= cfg.epochs for m in cfg.milestones),
              f"milestones must lie in (0, {cfg.epochs}] epochs")
        check("warmup_epochs", 0 <= cfg.warmup_epochs < cfg.epochs, "warm-up must be shorter than the run")
    check("warmup_mode", cfg.warmup_mode in WARMUPS, f"unknown warm-up {cfg.warmup_mode!r}; valid: {', '.join(WARMUPS)}")
    check("precision", cfg.precision in PRECISIONS, f"unknown precision {cfg.precision!r}; valid: {', '.join(PRECISIONS)}")
    try:
        parse_device(cfg.device)
    except ValueError as e:
        errors["device"] = str(e)
    check("val_size", cfg.val_size >= 0, "validation size cannot be negative")
    check("subset", cfg.subset >= 0, "subset cannot be negative (0 means the whole training split)")
    check("log_every", cfg.log_every >= 1, "log interval must be at least 1 step")
    check("preset", cfg.preset in ("", "paper"), "the only preset is 'paper'")
    check("name", cfg.name == "" or runs.safe_name(cfg.name) != "", "a run name needs a letter or digit")
    return errors


# ------------------------------------------------------------- device and precision

def parse_device(device: str) -> str:
    """Validate a device spec: auto, cpu, cuda, cuda:N or mps."""
    if device in ("auto", "cpu", "cuda", "mps"):
        return device
    if device.startswith("cuda:") and device[5:].isdigit():
        return device
    raise ValueError(f"unknown device {device!r}; valid: {DEVICES_HELP}")


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

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.channels_last = resolve_channels_last(cfg.channels_last, self.device)
        self.compile = resolve_compile(cfg.compile, self.device)
        self.step = 0

    def prepare_data(self) -> None:
        cfg = self.cfg
        data = load_cifar10(cfg.data_dir, download=cfg.download, progress=_download_logger())
        self.classes = list(data.classes)
        num_train = len(data.train_labels)
        if cfg.val_size >= num_train:
            raise ValueError(f"validation size {cfg.val_size} leaves no training images (the set has {num_train})")
        train_idx, val_idx = split_train_val(num_train, cfg.val_size, cfg.seed)
        if cfg.subset:
            train_idx = train_idx[:cfg.subset]
        if len(train_idx) < cfg.batch_size:
            raise ValueError(f"{len(train_idx)} training images are fewer than one batch of {cfg.batch_size}")
        loader = lambda images, labels, idx, train: DeviceLoader.from_numpy(
            images[idx], labels[idx], idx.astype(np.int64), self.device,
            cfg.batch_size if train else max(cfg.batch_size, 500), train=train, seed=cfg.seed,
            channels_last=self.channels_last)
        test_idx = np.arange(len(data.test_labels))
        self.train_loader = loader(data.train_images, data.train_labels, train_idx, True)
        self.test_loader = loader(data.test_images, data.test_labels, test_idx, False)
        # val_size 0: the test set stands in for validation, and the run records that.
        self.val_source = "train" if cfg.val_size else "test"
        self.val_loader = (loader(data.train_images, data.train_labels, val_idx, False)
                           if cfg.val_size else self.test_loader)

    def build(self) -> None:
        cfg = self.cfg
        spe = len(self.train_loader)
        if cfg.preset == "paper":
            log.info("paper preset: %d epochs of %d steps, lr drops at epochs %s", cfg.epochs, spe, cfg.milestones)
        milestones = cfg.milestones or [cfg.epochs * 0.5, cfg.epochs * 0.75]
        self.schedule = Schedule(cfg.schedule, cfg.lr, cfg.epochs * spe, tuple(round(m * spe) for m in milestones),
                                 round(cfg.warmup_epochs * spe), cfg.warmup_mode, cfg.momentum)
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
            with self.autocast():
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

    def __init__(self, cfg: TrainConfig, run_dir: Path, stop: StopRequested):
        super().__init__(cfg)
        self.run_dir, self.stop = run_dir, stop
        # On a resume both files exist already: keep what they recorded.
        self.status: dict = runs.read_json(run_dir / runs.STATUS_FILE) or {}
        self.config_record: dict = runs.read_json(run_dir / runs.CONFIG_FILE) or {}
        self.pid_start = runs.process_start_time(os.getpid())  # lets readers tell us from a later process with our pid

    # -- files --------------------------------------------------------------------
    def set_status(self, **changes) -> None:
        self.status.update(changes, format_version=runs.FORMAT_VERSION, pid=os.getpid(), pid_start=self.pid_start,
                           updated_at=time.time())
        runs.atomic_write_json(self.run_dir / runs.STATUS_FILE, self.status)

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
    def execute(self, resume: bool) -> int:
        """Run to the end; returns the process exit code. Never raises."""
        cfg = self.cfg
        now = time.time()
        # A resumed run keeps the training time of its earlier sessions.
        earlier = self.status.get("elapsed_before_s") or 0.0
        if resume and self.status.get("started_at"):
            end = self.status.get("finished_at") or self.status.get("updated_at") or self.status["started_at"]
            earlier += max(0.0, end - self.status["started_at"])
        # Status before config: readers take a folder with config.json but no live status
        # for a crashed run, so that order must never be visible.
        self.set_status(state="queued", epoch=self.status.get("epoch", 0), step=self.status.get("step", 0),
                        total_epochs=cfg.epochs, created_at=self.status.get("created_at", now),
                        started_at=None, finished_at=None, error=None, elapsed_before_s=earlier)
        self.write_config()
        try:
            if not self.acquire_device():
                self.set_status(state="stopped", finished_at=time.time())
                log.info("stopped while queued")
                return 0
            self.set_status(state="running", started_at=time.time())
            return self.train(resume)
        except Diverged as e:
            log.error("%s", e)
            self.set_status(state="diverged", error=str(e), finished_at=time.time())
            return 3
        except Exception as e:
            log.error("run failed:\n%s", traceback.format_exc())
            message = str(e) if isinstance(e, (DataError, ValueError)) else f"{type(e).__name__}: {e}"
            self.set_status(state="failed", error=message, finished_at=time.time())
            return 1

    def record_setup(self) -> None:
        """Complete config.json once the data and model are known."""
        cfg, spe = self.cfg, len(self.train_loader)
        summary = describe_model(cfg.depth, cfg.block, cfg.shortcut, len(self.classes))
        self.config_record.update(classes=self.classes, model={"name": summary.name, "params": summary.params,
                                                                "macs": summary.macs})
        self.write_config(
            steps_per_epoch=spe, total_steps=cfg.epochs * spe, train_size=self.train_loader.num_images,
            val_size=self.val_loader.num_images, val_source=self.val_source, test_size=self.test_loader.num_images)

    def train(self, resume: bool) -> int:
        cfg = self.cfg
        self.prepare_data()
        self.build()
        self.record_setup()
        start_epoch, partial = 0, None
        self.step, self.best_val_acc, self.best_epoch = 0, -1.0, 0
        checkpoint = self.run_dir / runs.LAST_CHECKPOINT
        if resume and checkpoint.exists():
            start_epoch, partial = self.load_checkpoint(checkpoint)
            log.info("resuming after epoch %d, step %d%s", start_epoch, self.step,
                     f" (mid-epoch at batch {partial['batch']})" if partial else "")
        truncate_metrics(self.run_dir, self.step, start_epoch)
        self.metrics_file = open(self.run_dir / runs.METRICS_FILE, "a")
        self.set_status(epoch=start_epoch, step=self.step, total_steps=cfg.epochs * len(self.train_loader),
                        best_val_acc=self.best_val_acc if self.best_epoch else None, best_epoch=self.best_epoch or None)
        log.info("training %s (%s, option %s) on %s (%s, %s, channels_last=%s): %d train / %d val (%s) images",
                 f"ResNet-{cfg.depth}", cfg.block, cfg.shortcut, self.device, device_name(self.device), self.precision,
                 self.channels_last, self.train_loader.num_images, self.val_loader.num_images, self.val_source)
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            if not self.train_epoch(epoch, partial):
                self.set_status(state="stopped", finished_at=time.time())
                log.info("stopped at epoch %d, step %d; resume with --resume %s", epoch, self.step, self.run_dir)
                return 0
            partial = None
        test = self.evaluate(self.test_loader, "test", cfg.epochs)
        self.append_metrics({"type": "test", "epoch": cfg.epochs, "test_loss": test["loss"], "test_acc": test["acc"]})
        self.set_status(state="completed", test_acc=test["acc"], finished_at=time.time())
        log.info("completed: test accuracy %.2f%%, best validation %.2f%% (epoch %d)",
                 100 * test["acc"], 100 * self.best_val_acc, self.best_epoch)
        return 0

    def train_epoch(self, epoch: int, partial: dict | None) -> bool:
        """One epoch (or its rest, after a mid-epoch resume). False if a stop was requested."""
        cfg, device = self.cfg, self.device
        num_classes = len(self.classes)
        sums = EpochSums.from_state(partial["sums"], device) if partial else EpochSums.zeros(device, num_classes)
        start_batch = partial["batch"] if partial else 0
        elapsed_before = partial["seconds"] if partial else 0.0
        self.model.train()
        t_epoch = time.perf_counter()
        t_row, seen_row = t_epoch, 0
        row_loss = torch.zeros((), device=device)
        row_correct = torch.zeros((), device=device, dtype=torch.int64)
        progress = TerminalProgress(epoch, cfg.epochs, len(self.train_loader))
        batch = start_batch
        for _, x, y in self.train_loader.epoch(epoch, start_batch):
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
            if self.step % cfg.log_every == 0 or batch == len(self.train_loader) or self.stop:
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
            if self.stop and batch < len(self.train_loader):
                progress.close()
                seconds = elapsed_before + time.perf_counter() - t_epoch
                self.save_checkpoint(epoch - 1, {"epoch": epoch, "batch": batch, "sums": sums.state(), "seconds": seconds})
                return False
        progress.close()
        self.finish_epoch(epoch, sums, elapsed_before + time.perf_counter() - t_epoch)
        return not self.stop or epoch == self.cfg.epochs

    def finish_epoch(self, epoch: int, sums: EpochSums, seconds: float) -> None:
        train_loss = sums.loss.item() / sums.seen
        if not math.isfinite(train_loss):
            raise Diverged(f"loss became {train_loss} in epoch {epoch}; try a lower learning rate or a warm-up")
        runs.save_predictions(self.run_dir, "train", epoch,
                              confusion=sums.confusion.view(len(self.classes), -1).cpu().numpy())
        val = self.evaluate(self.val_loader, "val", epoch)
        self.append_metrics({
            "type": "epoch", "epoch": epoch, "step": self.step, "train_loss": train_loss,
            "train_acc": sums.correct.item() / sums.seen, "val_loss": val["loss"], "val_acc": val["acc"],
            "lr": self.schedule.lr(self.step - 1), "epoch_seconds": seconds,
            "images_per_s": sums.seen / max(seconds, 1e-9),
            "peak_memory_mb": peak_memory_mb(self.device)})
        improved = val["acc"] > self.best_val_acc
        if improved:
            self.best_val_acc, self.best_epoch = val["acc"], epoch
        self.save_checkpoint(epoch, None)
        if improved:
            runs.atomic_write_bytes(self.run_dir / runs.BEST_CHECKPOINT,
                                    (self.run_dir / runs.LAST_CHECKPOINT).read_bytes())
        self.set_status(epoch=epoch, step=self.step, best_val_acc=self.best_val_acc, best_epoch=self.best_epoch)
        log.info("epoch %d/%d: train loss %.4f acc %.2f%% | val loss %.4f acc %.2f%% | %.1f s", epoch,
                 self.cfg.epochs, train_loss, 100 * sums.correct.item() / sums.seen, val["loss"], 100 * val["acc"], seconds)

    def evaluate(self, loader: DeviceLoader, split: str, epoch: int) -> dict:
        """Record a split's per-image predictions in predictions/; returns mean loss and accuracy."""
        arrays = self.predict(loader)
        runs.save_predictions(self.run_dir, split, epoch, **arrays)
        return {"loss": float(arrays["loss"].mean()), "acc": float((arrays["preds"] == arrays["labels"]).mean())}

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, completed_epochs: int, partial: dict | None) -> None:
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
        path = self.run_dir / runs.LAST_CHECKPOINT
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: Path) -> tuple[int, dict | None]:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.step, self.best_val_acc, self.best_epoch = state["step"], state["best_val_acc"], state["best_epoch"]
        return state["epoch"], state["partial_epoch"]


def truncate_metrics(run_dir: Path, step: int, epoch: int) -> None:
    """Keep only the metric rows a checkpoint at (step, epoch) covers, and drop the
    prediction files of later epochs: the history a resume continues without duplicates."""
    rows = runs.read_metrics(run_dir)
    kept = [r for r in rows if (r.get("type") == "step" and r["step"] <= step)
            or (r.get("type") == "epoch" and r["epoch"] <= epoch)]
    if len(kept) != len(rows) or (run_dir / runs.METRICS_FILE).exists():
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


def _download_logger():
    last = [-1]

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else -1
        if pct != last[0] and pct % 10 == 0:
            log.info("downloading CIFAR-10: %d%%", pct)
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

def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m resnet_core.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--depth", type=int, default=d.depth, help="6n+2 (basic) or 9n+2 (bottleneck)")
    p.add_argument("--block", choices=BLOCKS, default=d.block)
    p.add_argument("--shortcut", choices=SHORTCUTS, default=d.shortcut)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--milestones", type=float, nargs="*", default=d.milestones,
                   help="multistep: epochs at which lr is divided by 10 (default: 50%% and 75%% of the run)")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--warmup-mode", choices=WARMUPS, default=d.warmup_mode, help="linear ramp, or constant lr/10 as the paper's ResNet-110")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help=DEVICES_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for CUDA and CPU, off for MPS")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the training step (default: on for CUDA; on a CPU it pays off in long runs)")
    p.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/ (default: $RESNET_STUDIO_DATA or ./data)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 into --data-dir if it is missing")
    p.add_argument("--runs-dir", default=d.runs_dir)
    p.add_argument("--name", default=d.name, help="run name, part of the run folder's name")
    p.add_argument("--run-dir", default=None, help="write into this new or empty folder instead of a fresh one under --runs-dir")
    p.add_argument("--val-size", type=int, default=d.val_size, help="validation images carved from the training set; 0 validates on the test set")
    p.add_argument("--subset", type=int, default=d.subset, help="train on the first N images of the training split")
    p.add_argument("--log-every", type=int, default=d.log_every, help="steps between metric rows")
    p.add_argument("--preset", choices=["paper"], default=None,
                   help="paper: He et al.'s recipe (batch 128, lr 0.1 /10 at 32k and 48k of 64k iterations, wd 1e-4, 45k/5k split)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a stopped, failed or killed run")
    return p


def config_from_args(args: argparse.Namespace, typed: set[str]) -> TrainConfig:
    """The config of parsed flags; with --preset paper the recipe fills every field whose
    flag was not typed (typed: the config fields the user gave on the command line)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    values["preset"] = args.preset or ""
    cfg = TrainConfig(**values)
    if args.preset == "paper":
        # The paper's epochs follow from its iteration counts and this split's batches.
        val = cfg.val_size if "val_size" in typed else 5000
        train_images = cfg.subset or CIFAR10_TRAIN_IMAGES - val
        batch = cfg.batch_size if "batch_size" in typed else PAPER_BATCH_SIZE
        for key, value in paper_preset(cfg.depth, max(1, train_images // batch)).items():
            if key not in typed:
                setattr(cfg, key, value)
    return cfg


def parse(argv: list[str] | None, more_arguments=None) -> tuple[TrainConfig, argparse.Namespace, argparse.ArgumentParser]:
    """The config from a command line; more_arguments(parser) may add flags (the benchmark's)."""
    parser, probe = build_parser(), build_parser()
    for p in (parser, probe):
        if more_arguments:
            more_arguments(p)
    args = parser.parse_args(argv)
    # Which flags were typed: parse again with every default suppressed.
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    typed = set(vars(probe.parse_args(argv)))
    return config_from_args(args, typed), args, parser


def setup_logging(run_dir: Path) -> None:
    root = logging.getLogger("resnet_core")
    root.setLevel(logging.INFO)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    file_handler = logging.FileHandler(run_dir / runs.LOG_FILE)
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)


def record_refusal(run_dir: Path, cfg: TrainConfig, message: str) -> None:
    """Leave a failed run in a folder the caller created for us (--run-dir), so that the
    dashboard shows why the trainer never started instead of an empty folder."""
    if (run_dir / runs.CONFIG_FILE).exists():
        return  # never overwrite a run that is already there
    now = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_json(run_dir / runs.STATUS_FILE, {
        "format_version": runs.FORMAT_VERSION, "state": "failed", "pid": os.getpid(), "epoch": 0, "step": 0,
        "total_epochs": cfg.epochs, "created_at": now, "started_at": None, "updated_at": now, "finished_at": now,
        "error": message})
    runs.atomic_write_json(run_dir / runs.CONFIG_FILE, {"format_version": runs.FORMAT_VERSION, "run_id": run_dir.name,
                                                         "created": now, "config": dataclasses.asdict(cfg), "resolved": {}})


def main(argv: list[str] | None = None) -> int:
    cfg, args, parser = parse(argv)
    stop = StopRequested()
    stop.install()
    if args.resume:
        run_dir = Path(args.resume)
        record = runs.read_json(run_dir / runs.CONFIG_FILE)
        if record is None:
            parser.error(f"--resume: {run_dir} is not a run folder (no readable {runs.CONFIG_FILE})")
        info = runs.read_run(run_dir)
        if info.state in runs.ACTIVE_STATES:
            parser.error(f"--resume: {run_dir} is still {info.state} (pid {info.status.get('pid')})")
        if info.state == "completed":
            parser.error(f"--resume: {run_dir} already completed")
        cfg = TrainConfig(**{k: v for k, v in record["config"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}})
    problem = "; ".join(config_errors(cfg).values())
    if not problem:
        try:
            resolve_device(cfg.device)  # e.g. --device cuda on a machine without one
        except ValueError as e:
            problem = str(e)
    if not problem and not cfg.download and not dataset_present(cfg.data_dir):
        problem = f"{missing_data_message(resolve_data_dir(cfg.data_dir), 'no batch files')} Or add --download."
    if problem:
        if args.run_dir and not args.resume:
            record_refusal(Path(args.run_dir), cfg, problem)
        parser.error(problem)
    if args.run_dir and not args.resume:
        run_dir = Path(args.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if (run_dir / runs.CONFIG_FILE).exists():
            parser.error(f"--run-dir: {run_dir} already holds a run; use --resume to continue it")
    elif not args.resume:
        run_dir = runs.new_run_dir(Path(cfg.runs_dir), cfg.name)
    setup_logging(run_dir)
    log.info("run folder: %s", run_dir)
    return Run(cfg, run_dir, stop).execute(resume=bool(args.resume))


if __name__ == "__main__":
    sys.exit(main())
