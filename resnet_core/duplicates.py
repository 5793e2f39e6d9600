"""Test images that are near-duplicates of training images, in pixel space (no model).

CIFAR-10's test set holds near-copies of training images (Barz & Denzler 2020, "Do we train
on test data?"); a test error measured on them is partly a training error. Two steps:

1. Candidates: each image's descriptor, its grey levels averaged over 4x4 blocks (8x8 = 64
   numbers), mean-centred and L2-normalised, so a brightness offset or a 1-pixel shift
   (a quarter of a block) barely moves it; an exact cosine search of every test image
   against every training image (torch matmul in chunks) keeps the CANDIDATES most similar.
2. Verification at full resolution: the distance of a pair is the smallest, over the nine
   shifts of at most one pixel in each direction, mean |difference| of the overlapping
   pixels of all three channels, in grey levels (0-255). A test image is a near-duplicate
   when its nearest candidate lies within THRESHOLD.

Measured on the real CIFAR-10 (../shared/data/cifar10, whose test rows 1000-9999 are JPEG
approximations): the nearest pairs' distances rise smoothly, with no gap between copies and
look-alikes (test images within 8 / 12 / 16 / 20 / 25 grey levels: 14 / 67 / 240 / 400 / 816).
The test and training labels of the pairs agree for 98.5% within 12, 98.3% within 12-16, 92%
within 16-20 and 74% within 20-25; 48 of 48 pairs looked at within 12 and 46 of 48 within
12-16 were the same photograph (re-encoded, recoloured, shifted or re-cropped), while within
16-20 plain skies, seas and fields with another object on them appear. So THRESHOLD is 16:
240 test images (2.4%; Barz & Denzler report 3.3% with CNN features, which also find
re-cropped and mirrored copies that pixels miss). A Pearson correlation instead of the mean
|difference| did not separate them better (the plain images correlate as well).

Images are uint8, (N, 3, 32, 32) as :func:`resnet_core.cifar.load_cifar` returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .cifar import ProgressCallback

if TYPE_CHECKING:
    import torch

# torch is imported where the search computes, not here: Explain imports this module for its
# types and accuracy, and importing torch takes 1.3 s (see resnet_core.cifar).


BLOCK = 4  # 32x32 averaged over 4x4 blocks: an 8x8 descriptor
CANDIDATES = 4  # training images verified per test image
SHIFT = 1  # pixels each way the verification aligns a pair by
THRESHOLD = 16.0  # grey levels (0-255) of mean |difference|: the module docstring's measurements
CHUNK = 1000  # test images per matmul: 1,000 x 50,000 float32 similarities take 200 MB


@dataclass(frozen=True)
class Duplicates:
    """The test images with a training twin, most similar first."""
    test_indices: np.ndarray  # int64 (D,): index in the test set
    train_indices: np.ndarray  # int64 (D,): its twin's index in the training set
    distance: np.ndarray  # float32 (D,): mean |difference| in grey levels (0-255), see the module docstring

    def __len__(self) -> int:
        return len(self.test_indices)

    def with_twin_in(self, train_indices: np.ndarray) -> Duplicates:
        """The pairs whose twin is one of these training images (a run's: --subset and its
        validation split leave twins it never trained on, and an error on their test images
        is then no training error)."""
        keep = np.isin(self.train_indices, np.asarray(train_indices))
        return Duplicates(self.test_indices[keep], self.train_indices[keep], self.distance[keep])


@dataclass(frozen=True)
class Nearest:
    """Every test image's nearest training image after verification (what the threshold cuts)."""
    train_indices: np.ndarray  # int64 (N_test,)
    distance: np.ndarray  # float32 (N_test,)

    def duplicates(self, threshold: float = THRESHOLD) -> Duplicates:
        found = np.flatnonzero(self.distance <= threshold)
        order = found[np.argsort(self.distance[found], kind="stable")]
        return Duplicates(order.astype(np.int64), self.train_indices[order].astype(np.int64),
                          self.distance[order].astype(np.float32))


def descriptors(images: np.ndarray, chunk: int = 5000) -> torch.Tensor:
    """(N, 64) float32: grey 8x8 block means, mean-centred and L2-normalised (a flat image: zeros).
    `chunk` images at a time: all 50,000 training images as float32 at once would hold 614 MB."""
    import torch

    images = np.asarray(images)
    parts = []
    for start in range(0, len(images), chunk):
        x = torch.as_tensor(images[start:start + chunk]).float().mean(dim=1, keepdim=True)  # (n, 1, 32, 32)
        parts.append(torch.nn.functional.avg_pool2d(x, BLOCK).flatten(1))
    x = torch.cat(parts) if parts else torch.zeros(0, (images.shape[-1] // BLOCK) ** 2)
    x = x - x.mean(dim=1, keepdim=True)
    return torch.nn.functional.normalize(x, dim=1)


def shifted_distance(a: torch.Tensor, b: torch.Tensor, shift: int = SHIFT) -> torch.Tensor:
    """Mean |a - b| of pairs (P, 3, H, W), minimised over b's shifts of up to `shift` pixels
    each way (only the overlap compared), in the images' units."""
    h, w = a.shape[-2:]
    best = None
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            pa = a[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
            pb = b[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            d = (pa - pb).abs().flatten(1).mean(dim=1)
            best = d if best is None else best.minimum(d)
    return best


def nearest_training_images(test_images: np.ndarray, train_images: np.ndarray,
                            progress: ProgressCallback | None = None) -> Nearest:
    """Each test image's nearest training image in pixel space and their distance (see the module docstring)."""
    import torch

    test_images, train_images = np.asarray(test_images), np.asarray(train_images)
    n = len(test_images)
    k = min(CANDIDATES, len(train_images))
    best_index = np.zeros(n, dtype=np.int64)
    best_distance = np.full(n, np.inf, dtype=np.float32)
    if n == 0 or k == 0:
        return Nearest(best_index, best_distance)
    train_desc = descriptors(train_images)
    train_pixels = torch.as_tensor(train_images)
    with torch.inference_mode():
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            candidates = (descriptors(test_images[start:stop]) @ train_desc.T).topk(k, dim=1).indices  # (c, k)
            a = torch.as_tensor(test_images[start:stop]).float().repeat_interleave(k, dim=0)
            b = train_pixels[candidates.flatten()].float()
            d = shifted_distance(a, b).view(-1, k)
            d_min, at = d.min(dim=1)
            best_index[start:stop] = candidates.gather(1, at[:, None]).squeeze(1).numpy()
            best_distance[start:stop] = d_min.numpy()
            if progress is not None:
                progress(stop, n)
    return Nearest(best_index, best_distance)


def find_duplicates(test_images: np.ndarray, train_images: np.ndarray, progress: ProgressCallback | None = None,
                    threshold: float = THRESHOLD) -> Duplicates:
    """The test images whose nearest training image lies within `threshold` grey levels, most similar first."""
    return nearest_training_images(test_images, train_images, progress).duplicates(threshold)


@dataclass(frozen=True)
class SplitAccuracy:
    """A run's accuracy on the test images with a training twin and on the rest."""
    duplicates_right: int
    duplicates: int
    rest_right: int
    rest: int

    @staticmethod
    def _share(right: int, count: int) -> float | None:
        return right / count if count else None

    @property
    def on_duplicates(self) -> float | None:
        return self._share(self.duplicates_right, self.duplicates)

    @property
    def on_rest(self) -> float | None:
        return self._share(self.rest_right, self.rest)


def accuracy_split(preds: dict[str, np.ndarray], found: Duplicates) -> SplitAccuracy:
    """Accuracy of recorded test predictions (arrays ``indices``, ``labels``, ``preds``, see
    resnet_core.runs.folder_format) on the duplicated test images and on the others."""
    right = np.asarray(preds["preds"]) == np.asarray(preds["labels"])
    twin = np.isin(np.asarray(preds["indices"]), found.test_indices)
    return SplitAccuracy(int(right[twin].sum()), int(twin.sum()), int(right[~twin].sum()), int((~twin).sum()))
