"""last.pt and best.pt as a run writes them: the keys a checkpoint holds (which a resume
checks), its bytes, and best.pt's repair after a kill between the two writes (the
format: resnet_core/runs/folder_format.py)."""

from __future__ import annotations

import io
import logging

import torch

from . import runs
from .run_model import ModelLoadError, read_checkpoint

log = logging.getLogger("resnet_core.train")

CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "schedule", "rng", "epoch", "step", "best_val_acc",
                   "best_epoch", "partial_epoch")


def checkpoint_bytes(trainer_state: dict, completed_epochs: int, partial: dict | None, best_val_acc: float,
                     best_epoch: int) -> bytes:
    """A checkpoint: the trainer's state (Trainer.checkpoint_state), the epochs completed,
    the best validation result so far and, after a mid-epoch stop, the partial epoch."""
    return serialized({"format_version": runs.FORMAT_VERSION, **trainer_state, "epoch": completed_epochs,
                       "best_val_acc": best_val_acc, "best_epoch": best_epoch, "partial_epoch": partial})


def serialized(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def repair_best_checkpoint(writer: runs.RunWriter, state: dict) -> None:
    """Make best.pt hold the best epoch again after a kill between last.pt and best.pt
    (state: last.pt's, which a resume starts from)."""
    best_epoch = state["best_epoch"]
    if not best_epoch or state["epoch"] != best_epoch or state["partial_epoch"] is not None:
        return  # best.pt was written before this last.pt, so it already holds best_epoch
    try:  # as readers read it: a FIFO there hung the resume, a symlink was read through
        held = read_checkpoint(writer.run_dir, runs.BEST_CHECKPOINT, ("epoch",))["epoch"]
    except ModelLoadError:  # missing, half-written or no regular file: restore it
        held = None
    if held != best_epoch:
        log.info("best.pt held epoch %s, not the best epoch %d: restoring it from last.pt", held, best_epoch)
        writer.write_checkpoint(serialized(state), last=False, best=True)
