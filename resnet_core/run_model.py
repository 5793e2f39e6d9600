"""A run's trained model, ready to predict: from a run folder and "best" or "last".

:func:`load_run_model` reads the run's config.json (model shape, classes, the
normalisation the trainer used), opens ``best.pt`` or ``last.pt`` without following
symlinks (see :mod:`resnet_core.runs.folder_format`), checks that its weights fit the recorded model,
and returns the model in eval mode on the CPU with the run's normalisation. "best" falls
back to ``last.pt`` when the run has no ``best.pt`` (a run without a validation split, or
one stopped before its first validation), and says so in :attr:`RunModel.note`. Anything
that cannot load raises :class:`ModelLoadError` with one line to show as it is.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from . import runs
from .cifar import IMAGE_SIZE as CIFAR_SIZE
from .cifar import ChannelStats
from .config import TrainConfig, config_from_record, image_format
from .data import normalize
from .gradcam import grad_cam
from .model_names import family_counts
from .models import build_model
from .runs import model_name
from .runs.values import as_count


class ModelLoadError(Exception):
    """A run's model cannot be loaded: one line saying which file and what is wrong."""


def read_checkpoint(run_dir: Path, name: str, keys: tuple[str, ...] = ("model",),
                    follow_symlink: bool = False) -> dict:
    """The dict a run's checkpoint file holds (``torch.load(weights_only=True)``, on the
    CPU); ModelLoadError "<name> is corrupt: ..." when it cannot be read or lacks one of
    keys, "<name> is missing" when it is not there. Readers open it without following a
    symlink, as every run file; the trainer's resume follows one (follow_symlink) and then
    replaces the link with a file of its own."""
    try:
        with runs.open_run_file(Path(run_dir), name, follow_symlink) as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"{name} is missing in {run_dir}") from None
    except runs.RunFolderError as e:  # a folder, FIFO or symlink at the name
        raise ModelLoadError(f"{name} is corrupt: {e}") from None
    except Exception as e:  # truncated, not a checkpoint, pickled objects weights_only refuses...
        raise ModelLoadError(f"{name} is corrupt: {_load_failure(e)}") from None
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise ModelLoadError(f"{name} is corrupt: it lacks {', '.join(missing)}")
    return state


# The paragraphs around what torch.load's refusal says about the file: its advice to load
# with weights_only=False (running whatever code the file holds) and where to report it.
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def _load_failure(e: Exception) -> str:
    """What torch.load's exception says about the file, in one line: the specific reason
    of a weights_only refusal, else the first sentence (torch's follow-on advice left out)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if isinstance(e, pickle.UnpicklingError):
        reason = next((line for line in lines if not line.startswith(_TORCH_ADVICE)), "objects beyond weights")
        return f"not a checkpoint of weights ({reason[:200]})"
    first = lines[0].split(". ")[0] if lines else "unreadable"
    return f"{type(e).__name__}: {first[:200]}"


def same_shapes(weights, cfg: TrainConfig, num_classes: int) -> bool:
    """Whether a checkpoint's model weights fit the model cfg builds (shapes only, no memory).
    A recorded model with more parameters than the file holds values is judged unbuilt:
    building is as slow as the recorded depth is large (depth 60002: 85 s on the meta device)."""
    try:
        held = sum(v.numel() for v in weights.values())
        if family_counts(cfg.depth, cfg.block, cfg.shortcut or None, num_classes, cfg.preact).params > held:
            return False
        with torch.device("meta"):
            model = build_model(cfg.depth, cfg.block, cfg.shortcut or None, num_classes, cfg.preact)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        return {k: tuple(v.shape) for k, v in weights.items()} == expected
    except (AttributeError, TypeError, ValueError):  # not a dict of tensors, or a config no model fits
        return False


def check_weights(weights, cfg: TrainConfig, num_classes: int, name: str) -> None:
    """ModelLoadError "<name> is corrupt: ..." unless the weights fit the model cfg builds."""
    if not same_shapes(weights, cfg, num_classes):
        raise ModelLoadError(f"{name} is corrupt: its weights are not those of the recorded "
                             f"{model_name(cfg.depth, cfg.shortcut, cfg.preact)} ({cfg.block}, "
                             f"shortcut {cfg.shortcut})")


@dataclass
class RunModel:
    model: nn.Module  # in eval mode, on the CPU
    stats: ChannelStats  # the normalisation the run trained with
    classes: list[str]
    name: str  # "ResNet-20"
    checkpoint: str  # the file loaded: "best.pt" or "last.pt"
    epoch: int | None  # completed epochs the checkpoint holds
    note: str | None  # e.g. why last.pt stands in for best.pt
    image_size: int = CIFAR_SIZE  # the side of the square images it trained on (see image_format)
    resize: str = "crop"  # how an image of another shape became one of them (TrainConfig.resize)
    # Steps of the next epoch trained too: a last.pt saved by a stop mid-epoch (its partial_epoch).
    steps_into_epoch: int = 0

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, 3, S, S), S its image_size, as the model's float input, normalised
        as in training; a ValueError for images of another size (the network, pooling
        globally, would classify them, but not as it was trained)."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"{self.name} takes {self.image_size}x{self.image_size} images, not "
                             f"{'x'.join(map(str, images.shape[-2:]))}")
        return normalize(images, self.stats)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (N, classes) of uint8 images (N, 3, S, S), in fp32."""
        return torch.softmax(self.model(self.inputs(images)).float(), dim=1)

    def explain(self, images: np.ndarray, classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM maps (N, S, S) in [0, 1] of uint8 images (N, 3, S, S) for the given
        classes (None: each image's top-1 prediction), and the images' probabilities (N, C)."""
        x = self.inputs(torch.from_numpy(np.ascontiguousarray(images)))
        cams, logits = grad_cam(self.model, x, None if classes is None else torch.as_tensor(list(classes)))
        return cams.numpy(), torch.softmax(logits.float(), dim=1).numpy()

    @property
    def description(self) -> str:
        # A last.pt stopped 3 steps into epoch 2 read "epoch 1", whose end weights it does not
        # hold: its predictions differed from epoch 1's recorded test predictions.
        epoch = f", epoch {self.epoch}" if self.epoch is not None else ""
        if self.steps_into_epoch:
            epoch += f" and {self.steps_into_epoch:,} steps of epoch {(self.epoch or 0) + 1}"
        return f"{self.name}, {self.checkpoint}{epoch}"


def checkpoint_file(run_dir: Path, which: str) -> tuple[str, str | None]:
    """The checkpoint file name to load for "best" or "last", and a note when "best" falls
    back to last.pt; ModelLoadError when there is none."""
    if which not in runs.CHECKPOINTS:
        raise ModelLoadError(f"unknown checkpoint {which!r}: choose {' or '.join(runs.CHECKPOINTS)}")
    run_dir = Path(run_dir)
    name = runs.CHECKPOINTS[which]
    if os.path.lexists(run_dir / name):
        return name, None
    if which == "best" and os.path.lexists(run_dir / runs.LAST_CHECKPOINT):
        return runs.LAST_CHECKPOINT, (f"{run_dir.name} has no {runs.BEST_CHECKPOINT} (no validation split, or "
                                      f"none finished yet): using {runs.LAST_CHECKPOINT}")
    raise ModelLoadError(f"{run_dir} has no {name}" + (" and no last.pt" if which == "best" else "")
                         + ": the run has not finished an epoch")


def checkpoint_mtime(run_dir: Path, which: str) -> int:
    """The modification time (ns) of the file "best" or "last" loads, 0 when none: a cache key
    that changes whenever the trainer writes a new checkpoint."""
    try:
        name, _ = checkpoint_file(run_dir, which)
        return os.lstat(Path(run_dir) / name).st_mtime_ns
    except (ModelLoadError, OSError):
        return 0


def _normalization(resolved: dict) -> ChannelStats:
    norm = resolved.get("normalization") if isinstance(resolved, dict) else None
    try:
        mean, std = tuple(float(v) for v in norm["mean"]), tuple(float(v) for v in norm["std"])
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError
        return ChannelStats(mean, std, int(norm.get("images") or 0))
    except (TypeError, KeyError, ValueError):
        raise ModelLoadError("config.json records no usable normalization (resolved.normalization mean/std): "
                             "the run did not finish setting up") from None


def run_image_format(run_dir: str | os.PathLike) -> tuple[int, str]:
    """image_format of the run in run_dir, read before its model: what an image must become
    for it (never raises: a folder that is not a run gives CIFAR's, and its model will not load)."""
    info = runs.read_run(Path(run_dir))
    return image_format(info.resolved, info.train_config) if info is not None else (CIFAR_SIZE, "crop")


def load_run_model(run_dir: str | os.PathLike, which: str = "best") -> RunModel:
    """The run's model from best.pt or last.pt (see the module docstring); ModelLoadError
    with one line for a folder that is not a run, a missing or corrupt checkpoint, or
    weights that do not fit the recorded model."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelLoadError(f"{run_dir} is not a folder")
    info = runs.read_run(run_dir)
    if info is None or not os.path.lexists(run_dir / runs.CONFIG_FILE):  # a trainer that failed to start has none
        raise ModelLoadError(f"{run_dir} is not a run folder (no {runs.CONFIG_FILE})")
    if info.problem:
        raise ModelLoadError(f"{run_dir.name} cannot be read: {info.problem}")
    try:
        cfg = config_from_record(info.train_config)
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"{runs.CONFIG_FILE}: {e}") from None
    stats = _normalization(info.resolved)
    classes = info.classes or [str(i) for i in range(10)]
    name, note = checkpoint_file(run_dir, which)
    state = read_checkpoint(run_dir, name)
    check_weights(state["model"], cfg, len(classes), name)
    model = build_model(cfg.depth, cfg.block, cfg.shortcut or None, len(classes), cfg.preact)
    model.load_state_dict(state["model"])
    epoch = as_count(state.get("epoch"))
    partial = state.get("partial_epoch")
    size, resize = image_format(info.resolved, info.train_config)
    return RunModel(model=model.eval(), stats=stats, classes=classes,
                    name=model_name(cfg.depth, cfg.shortcut, cfg.preact),
                    checkpoint=name, epoch=epoch, note=note, image_size=size, resize=resize,
                    steps_into_epoch=as_count(partial.get("batch"), 0) if isinstance(partial, dict) else 0)
