"""Image splits (CIFAR-10's, or any square size) on the training device: whole batches augmented there.

Each split lives on the device as one uint8 tensor (50,000 images are 150 MB); every
batch is cropped, flipped and normalised there with a few tensor ops, as airbench does,
so no worker process or PIL image is ever involved. All randomness of a batch comes from
a generator seeded by (seed, epoch, batch), so an epoch can be resumed exactly from any
batch without saving generator states. In a distributed run each rank draws the whole
global batch's order and augmentation and keeps its own slice of it, so the images trained
on are the same at any world size. Reading the files: :mod:`resnet_core.cifar`.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .cifar import ChannelStats

def batch_generator(device: torch.device, *seed_parts: int) -> torch.Generator:
    """A generator on device seeded by a tuple of ints (seed, epoch, batch...)."""
    g = torch.Generator(device=device)
    g.manual_seed(hash(tuple(seed_parts)) & 0x7FFF_FFFF_FFFF_FFFF)
    return g


def crop_padding(image_size: int) -> int:
    """The random crop's zero padding for images of this side: the CIFAR recipe's 4 px at 32
    (He et al. 2016, section 4.2), scaled with the side (size // 8) so that a larger input
    is shifted by the same share of itself: 6 px at 48, 8 at 64, 12 at 96."""
    return image_size // 8


def augmentation_draws(n: int, padding: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A batch of n images' random crop offsets (dy, dx: n x 1) and flips (n booleans), in
    the order the generator always gave them, so runs and checkpoints keep their stream."""
    device = generator.device
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    return dy, dx, flip


def random_crop(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Zero-pad each image by padding pixels, then crop the original size at offsets (dy, dx)."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chan = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_flip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose flip is true left-right."""
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def normalize(images: torch.Tensor, stats: ChannelStats, channels_last: bool = False) -> torch.Tensor:
    """uint8 images to float32, standardised by the given channel means and stds."""
    mean = torch.tensor(stats.mean, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(stats.std, device=images.device).view(1, 3, 1, 1) * 255
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    x = images.to(memory_format=memory_format).float()
    return (x - mean) / std


class DeviceLoader:
    """Batches of (source indices, normalised images, labels) from a split kept on device.

    ``indices`` names each image's position in its source set (the training or test set),
    so evaluation records can point back at the image. A training loader with ``part``
    (rank, ranks) yields that rank's slice of each batch of ``batch_size`` (the global batch).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                 batch_size: int, *, stats: ChannelStats, train: bool, seed: int = 0, channels_last: bool = False,
                 part: tuple[int, int] = (0, 1)):
        if images.dtype != torch.uint8:
            raise ValueError("DeviceLoader keeps images as uint8")
        rank, ranks = part
        if batch_size % ranks or not 0 <= rank < ranks:
            raise ValueError(f"a batch of {batch_size} cannot be split into {ranks} equal parts")
        share = batch_size // ranks
        self.part = slice(rank * share, (rank + 1) * share)
        self.images, self.labels, self.indices = images, labels, indices
        self.batch_size = batch_size
        self.train = train  # shuffle, augment and drop the last partial batch
        self.seed = seed
        self.stats = stats
        self.channels_last = channels_last

    @classmethod
    def from_numpy(cls, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                   device: torch.device, batch_size: int, **kwargs) -> "DeviceLoader":
        return cls(torch.from_numpy(np.ascontiguousarray(images)).to(device),
                   torch.from_numpy(labels).to(device), torch.from_numpy(indices).to(device),
                   batch_size, **kwargs)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """Positions in this split in the order the epoch visits them (fresh each epoch)."""
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.labels.device)
        g = batch_generator(self.labels.device, self.seed, epoch)
        return torch.randperm(n, device=self.labels.device, generator=g)

    def epoch(self, epoch: int, start_batch: int = 0, stop_batch: int | None = None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batches start_batch..stop_batch-1 of an epoch (all by default)."""
        order = self.epoch_order(epoch)
        for b in range(start_batch, len(self) if stop_batch is None else stop_batch):
            pos = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.train:
                g = batch_generator(self.labels.device, self.seed, epoch, b)
                padding = crop_padding(self.images.shape[-1])
                dy, dx, flip = (draw[self.part] for draw in augmentation_draws(len(pos), padding, g))
                pos = pos[self.part]
                images = random_flip(random_crop(self.images[pos], padding, dy, dx), flip)
            else:
                images = self.images[pos]
            yield self.indices[pos], normalize(images, self.stats, self.channels_last), self.labels[pos]
