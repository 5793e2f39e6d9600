"""What the training steps say of each training image, epoch by epoch: the probability of
its trained label and whether the prediction was right, from the logits the step already
computed (the format: ``dynamics/`` in resnet_core/runs/folder_format.py; the analysis:
resnet_core.dynamics).

The record stays on the device until the epoch ends: :meth:`DynamicsRecorder.add` writes a
step's values into two buffers with index ops that never read anything back to the host, and
:meth:`DynamicsRecorder.take` brings the epoch over in one transfer.
"""

from __future__ import annotations

import numpy as np
import torch

from .distributed import Group


class DynamicsRecorder:
    """The epoch's record of every training image, indexed by its position in the training
    split (``indices``: each position's index in the training set, as the loader yields them).

    ``label_prob`` (float32) is NaN for an image the epoch has not presented yet and
    ``correct`` (bool) false. In a distributed run each rank records the images of its part
    of every global batch; :meth:`take` and :meth:`state` combine the ranks' records."""

    def __init__(self, indices: np.ndarray, device: torch.device):
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.num_images = len(indices)
        lookup = torch.full((int(indices.max()) + 1 if len(indices) else 0,), -1, dtype=torch.int64)
        lookup[indices] = torch.arange(self.num_images)
        self.position = lookup.to(device)  # training-set index -> position in the split
        self.label_prob = torch.full((self.num_images,), float("nan"), device=device)
        self.correct = torch.zeros(self.num_images, dtype=torch.bool, device=device)

    def start(self, state: dict | None = None) -> None:
        """A new epoch: nothing presented yet, or the record so far from a mid-epoch
        checkpoint's ``partial_epoch["dynamics"]`` (:meth:`state`)."""
        if state is None:
            self.label_prob.fill_(float("nan"))
            self.correct.zero_()
        else:
            self.label_prob.copy_(torch.as_tensor(state["label_prob"], dtype=torch.float32))
            self.correct.copy_(torch.as_tensor(state["correct"], dtype=torch.bool))

    @torch.no_grad()
    def add(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Record one step's images: training-set indices, the step's logits (softmaxed in
        fp32 whatever the training precision) and the labels trained on."""
        logits = logits.float()
        position = self.position[indices]
        self.label_prob.index_copy_(0, position, logits.softmax(1).gather(1, labels[:, None]).squeeze(1))
        self.correct.index_copy_(0, position, logits.argmax(1) == labels)

    def combined(self, group: Group) -> tuple[torch.Tensor, torch.Tensor]:
        """(label_prob, correct) over every rank of a distributed run, on every rank (one
        rank's own otherwise). Each image is presented by one rank in an epoch, so a sum over
        the ranks of (value where presented, else 0) is that rank's value, exactly."""
        if not group.world.distributed:
            return self.label_prob, self.correct
        presented = ~self.label_prob.isnan()
        prob = torch.where(presented, self.label_prob, 0.0)
        counts = torch.stack([presented, self.correct]).to(torch.int32)  # Gloo sums no bools
        group.sum_(prob, counts)
        return torch.where(counts[0] > 0, prob, float("nan")), counts[1] > 0

    def take(self, group: Group) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's record over every rank, on the host: label_prob (float32, N, NaN where
        not presented) and correct (bool, N). One transfer each, at the epoch's end."""
        prob, correct = self.combined(group)
        return prob.cpu().numpy(), correct.cpu().numpy()

    def state(self, group: Group) -> dict:
        """The epoch's record so far over every rank, for last.pt's ``partial_epoch["dynamics"]``."""
        prob, correct = self.combined(group)
        return {"label_prob": prob.cpu(), "correct": correct.cpu()}
