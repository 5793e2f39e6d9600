"""The training step and evaluation: data on the device, the model, its optimizer; no files.

The benchmark times exactly this :class:`Trainer`, so its numbers are the trainer's own;
:class:`resnet_core.loop.Run` adds the run folder around it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import Plan, TrainConfig, lr_drop_steps, warmup_steps
from .cifar import IMAGE_FOLDER, ChannelStats, CifarData, channel_stats, training_split
from .data import DeviceLoader
from .distributed import Group, World, shard
from .label_noise import flip_labels
from .device import resolve_channels_last, resolve_compile, resolve_device, resolve_precision
from .models import build_model
from .schedule import Schedule

log = logging.getLogger("resnet_core.train")


class Trainer:
    """Data on the device, the model, its optimizer and one training step; no files.

    The benchmark times exactly this, so its numbers are the trainer's own."""

    def __init__(self, cfg: TrainConfig, plan: Plan, device: torch.device | None = None, group: Group | None = None):
        """device: where to compute; a run passes the one it acquired (see placement),
        the default is the spec's first candidate. Precision, memory format and compile
        follow it. group: the ranks of a distributed run (resnet_core.distributed), which
        split each batch and each evaluation; by default a world of one."""
        self.cfg, self.plan = cfg, plan
        self.device = resolve_device(cfg.device) if device is None else device
        self.group = group or Group(World())
        self.precision = resolve_precision(cfg.precision, self.device)
        self.channels_last = resolve_channels_last(cfg.channels_last, self.device)
        self.compile = resolve_compile(cfg.compile, self.device)
        self.step = 0
        # Set by setup(): the data on the device (prepare_data), then the model (build).
        self.classes: list[str] = []
        self.superclasses: list[str] = []  # CIFAR-100's 20 coarse names, and each class's index among them
        self.superclass_of: list[int] = []
        self.stats: ChannelStats | None = None
        # The training split as trained on, in the training loader's order: each image's
        # index in the training set, its label after --label-noise and the data set's label.
        self.train_indices = self.train_labels = self.original_train_labels = None
        self.train_loader = self.val_loader = self.test_loader = None  # val_loader None: no validation split
        self.test_every_epoch = False
        self.schedule: Schedule | None = None
        self.model = self.train_forward = self.optimizer = self.scaler = self.autocast_dtype = None

    def setup(self, data: CifarData) -> None:
        """Everything a training step needs, in its order: the run and the benchmark both call this."""
        self.prepare_data(data)
        self.build()

    def prepare_data(self, data: CifarData) -> None:
        """The splits on the device, normalised by the training split's own statistics; the
        training split's labels flipped by --label-noise (never the validation or test labels)."""
        cfg = self.cfg
        self.classes = list(data.classes)
        self.superclasses, self.superclass_of = list(data.superclasses), list(data.superclass_of)
        train_idx, val_idx = training_split(len(data.train_labels), cfg.val_size, cfg.split_seed, cfg.subset,
                                            class_ordered=data.dataset == IMAGE_FOLDER)
        self.train_indices = train_idx.astype(np.int64)
        self.original_train_labels = data.train_labels[train_idx].astype(np.int64)
        self.train_labels = flip_labels(self.original_train_labels, cfg.label_noise, cfg.label_noise_seed,
                                        len(self.classes))
        trained_labels = data.train_labels.copy()
        trained_labels[train_idx] = self.train_labels
        self.stats = channel_stats(data.train_images[train_idx])
        world = self.group.world

        def loader(images, labels, idx, train):
            # Training: every rank holds the whole split and takes its part of each batch;
            # evaluation: each rank holds and predicts only its shard of the images.
            idx = idx if train else idx[shard(len(idx), world)]
            return DeviceLoader.from_numpy(
                images[idx], labels[idx], idx.astype(np.int64), self.device,
                cfg.batch_size if train else max(cfg.batch_size, 500), train=train, seed=cfg.seed,
                stats=self.stats, channels_last=self.channels_last, part=(world.rank, world.size) if train else (0, 1))

        self.train_loader = loader(data.train_images, trained_labels, train_idx, True)
        self.test_loader = loader(data.test_images, data.test_labels, np.arange(len(data.test_labels)), False)
        # No validation split (--val-size 0, the paper preset): the test set is evaluated
        # after every epoch for monitoring, as the paper's Figure 6, never to pick weights.
        self.val_loader = loader(data.train_images, data.train_labels, val_idx, False) if cfg.val_size else None
        self.test_every_epoch = self.val_loader is None

    def build(self) -> None:
        cfg, plan = self.cfg, self.plan
        self.schedule = Schedule(cfg.schedule, cfg.lr, plan.total_steps, lr_drop_steps(cfg, plan),
                                 warmup_steps(cfg, plan), cfg.warmup_mode, cfg.momentum)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.depth, cfg.block, cfg.shortcut, len(self.classes), cfg.preact).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        forward = self.model
        if self.group.world.distributed:
            if cfg.sync_bn:
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            # DDP averages the gradients over the ranks during backward; it also sends rank 0's
            # weights and BN buffers to the others, so every rank evaluates the same model.
            forward = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        # Only training steps go through the compiled forward: evaluation (BN in eval
        # mode) stays eager rather than paying for a second compile.
        self.train_forward = torch.compile(forward) if self.compile else forward
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
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
        try:
            return self.train_forward(x)
        except Exception as e:  # e.g. no C++ compiler for inductor: train eagerly instead
            if not self.compile:
                raise
            log.warning("torch.compile failed (%s: %s); training without it", type(e).__name__, str(e)[:500])
            self.train_forward, self.compile = self.train_forward._orig_mod, False
            return self.train_forward(x)

    def checkpoint_state(self) -> dict:
        """What a resume needs of the trainer: weights, optimizer, scaler, schedule, step, rngs."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "schedule": {"step": self.step, **dataclasses.asdict(self.schedule)},
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []},
                "step": self.step}

    def load_checkpoint_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty from a run without fp16: a resume in fp16 starts the loss scale afresh
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.step = state["step"]

    @torch.no_grad()
    def predict(self, loader: DeviceLoader, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
        """Per-image records of a split: indices, labels, preds, top-k classes and probabilities, loss,
        every image once (in a distributed run each rank predicts its shard; all get them all).
        progress: called after each batch with the images this rank has done so far."""
        self.model.eval()
        done = 0
        k = min(5, len(self.classes))
        names = ("indices", "labels", "preds", "topk_classes", "topk_probs", "loss")
        parts: dict[str, list] = {name: [] for name in names}
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
            done += len(y)
            if progress is not None:
                progress(done)
        self.model.train()
        arrays = {name: torch.cat(values).numpy() for name, values in parts.items()}
        arrays["topk_probs"] = arrays["topk_probs"].astype(np.float32)
        arrays["loss"] = arrays["loss"].astype(np.float32)
        return self.group.gather_arrays(arrays)
