"""CIFAR ResNets exactly as in He et al. 2016 ("Deep Residual Learning", section 4.2).

The network is a 3x3 stem convolution with 16 filters, then three stages of residual
blocks working on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters, then global
average pooling and a fully connected layer (the pooling makes it take any square size:
a 48x48 input works on 48, 24 and 12 px maps, model_names.stage_sides). Each stage stacks n blocks:

* basic blocks (two 3x3 convolutions): depth = 6n + 2, e.g. ResNet-20, -56, -110;
* bottleneck blocks (1x1, 3x3, 1x1 with expansion 4, from He et al., "Identity Mappings
  in Deep Residual Networks", 2016): depth = 9n + 2, e.g. ResNet-164 (n = 18).

Shortcuts, as in the paper's section 3.3:
* A: identity; where the shape changes, subsample with stride 2 and append zero
  channels for the extra width. Parameter-free.
* B: a 1x1 convolution + BN only where the shape changes, identity elsewhere.
* C: a 1x1 convolution + BN on every block.
* none: no shortcut at all, the paper's "plain" networks (section 4.2, Figure 6), with the
  same layers and parameters as option A: plain-20 has 269,722 like ResNet-20.

Pre-activation units (build_model's preact; He et al., "Identity Mappings in Deep Residual
Networks", 2016, Figure 1(b)) put BN -> ReLU before each convolution of either block type,
leave the sum unactivated, and end the network in one more BN -> ReLU before the pooling.

The default (:func:`default_shortcut`) follows the papers: A for basic blocks (the CIFAR
networks of Table 6), B for bottlenecks (the reference code of "Identity Mappings"
projects where the shape changes). Any option can be chosen for either block type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model_names import (NO_PAPER_RESULT, PaperResult, blocks_per_stage, check_num_classes, check_shortcut,
                          default_shortcut, family_counts, paper_result)
from .runs.layout import PLAIN, model_name

STAGE_WIDTHS = (16, 32, 64)

class ShortcutA(nn.Module):
    """Parameter-free shortcut: stride-2 subsampling, then zero channels for the new width."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_planes - in_planes
        if extra < 0:
            raise ValueError("option A cannot shrink the number of channels")
        # Split the zeros around the identity channels, as the reference implementation does.
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad != (0, 0):
            x = F.pad(x, (0, 0, 0, 0, *self.pad))
        return x


def make_shortcut(shortcut: str, in_planes: int, out_planes: int, stride: int,
                  batch_norm: bool = True) -> nn.Module | None:
    """The shortcut path of one block for option A, B or C; None for a plain block. A
    pre-activation block's projection is the 1x1 convolution alone (batch_norm False), as
    the authors' reference code: its input is already normalised."""
    if shortcut == PLAIN:
        return None
    shape_changes = stride != 1 or in_planes != out_planes
    if shortcut == "C" or (shortcut == "B" and shape_changes):
        conv = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(out_planes)) if batch_norm else nn.Sequential(conv)
    if shortcut == "A" and shape_changes:
        return ShortcutA(in_planes, out_planes, stride)
    return nn.Identity()


def with_shortcut(out: torch.Tensor, shortcut: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """A residual branch's output plus the shortcut of x; the branch alone in a plain block."""
    return out if shortcut is None else out + shortcut(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(with_shortcut(out, self.shortcut, x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = make_shortcut(shortcut, in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(with_shortcut(out, self.shortcut, x))


class PreActBasicBlock(nn.Module):
    """He et al. 2016b ("Identity Mappings"), Figure 1(b): BN -> ReLU -> 3x3 conv, twice, and
    the sum left as it is. Where activate_shortcut (the network's first unit, or where the
    shape changes), the shortcut takes the pre-activated input as the residual path does,
    as the authors' reference code; elsewhere it is the untouched identity."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str, activate_shortcut: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride, batch_norm=False)
        self.activate_shortcut = activate_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return with_shortcut(out, self.shortcut, act if self.activate_shortcut else x)


class PreActBottleneck(nn.Module):
    """The pre-activation bottleneck (He et al. 2016b): BN -> ReLU before each of the 1x1,
    3x3 (stride) and 1x1 (4x the width) convolutions; shortcut as PreActBasicBlock."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str, activate_shortcut: bool = False):
        super().__init__()
        out_planes = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.shortcut = make_shortcut(shortcut, in_planes, out_planes, stride, batch_norm=False)
        self.activate_shortcut = activate_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return with_shortcut(out, self.shortcut, act if self.activate_shortcut else x)


PREACT_BLOCKS = (PreActBasicBlock, PreActBottleneck)


class CifarResNet(nn.Module):
    """The network; with a pre-activation block the stem is the convolution alone (the first
    unit's BN -> ReLU activates it) and a final BN -> ReLU (bn_final, relu_final) precedes the
    pooling. relu_final is a module, without parameters, so that its output (the last stage's
    activated maps: Grad-CAM's layer) can be hooked."""

    def __init__(self, block: type[nn.Module], blocks_per_stage: int, shortcut: str, num_classes: int = 10):
        super().__init__()
        self.preact = block in PREACT_BLOCKS
        self.in_planes = STAGE_WIDTHS[0]
        self.conv1 = nn.Conv2d(3, self.in_planes, 3, padding=1, bias=False)
        if not self.preact:
            self.bn1 = nn.BatchNorm2d(self.in_planes)
        self.layer1 = self._make_layer(block, STAGE_WIDTHS[0], blocks_per_stage, 1, shortcut)
        self.layer2 = self._make_layer(block, STAGE_WIDTHS[1], blocks_per_stage, 2, shortcut)
        self.layer3 = self._make_layer(block, STAGE_WIDTHS[2], blocks_per_stage, 2, shortcut)
        if self.preact:
            self.bn_final = nn.BatchNorm2d(self.in_planes)
            self.relu_final = nn.ReLU()
        self.fc = nn.Linear(self.in_planes, num_classes)
        for m in self.modules():
            # The paper initialises weights as in He et al. 2015 ("Delving deep into rectifiers"),
            # forward case (fan_in), as the well-known CIFAR reproductions do. fan_out would give
            # the 64 -> 10 classifier a 2.5x larger scale and a much worse start.
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            if self.preact:  # a stage's first unit: the network's first, or where the shape changes
                layers.append(block(self.in_planes, planes, s, shortcut, activate_shortcut=not layers))
            else:
                layers.append(block(self.in_planes, planes, s, shortcut))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (N, 64 * expansion): the last stage (after the final
        BN -> ReLU of a pre-activation network), globally average-pooled."""
        x = self.conv1(x) if self.preact else F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.preact:
            x = self.relu_final(self.bn_final(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_model(depth: int, block: str = "basic", shortcut: str | None = None,
                num_classes: int = 10, preact: bool = False) -> CifarResNet:
    """The CIFAR ResNet of the given depth, block type and shortcut option (None: the
    block type's default, see default_shortcut); preact: pre-activation units (He et al.
    2016b) instead of the original order."""
    n = blocks_per_stage(depth, block)
    shortcut = check_shortcut(shortcut or default_shortcut(block))
    check_num_classes(num_classes)
    if preact:
        block_cls = PreActBasicBlock if block == "basic" else PreActBottleneck
    else:
        block_cls = BasicBlock if block == "basic" else Bottleneck
    return CifarResNet(block_cls, n, shortcut, num_classes)


@dataclass(frozen=True)
class ModelSummary:
    name: str
    depth: int
    block: str
    shortcut: str
    params: int
    macs: int  # multiply-accumulates of one forward pass on an image of the asked size (32x32 by default)
    dataset: str  # the dataset of the paper's number: "cifar10" or "cifar100"
    paper_error: float | None  # test error (%) a paper reports for this network on the dataset, if any
    paper_source: str | None
    paper_note: str | None  # e.g. "best of 5 runs; mean 6.61 ± 0.16" for ResNet-110

    @property
    def paper_text(self) -> str:
        """The paper's number as the paper gives it, or a sentence saying there is none."""
        if self.paper_error is None:
            return NO_PAPER_RESULT
        return PaperResult(self.paper_error, self.paper_source or "", self.paper_note).text


@lru_cache(maxsize=256)
def describe_model(depth: int, block: str = "basic", shortcut: str | None = None,
                   num_classes: int = 10, preact: bool = False, dataset: str = "cifar10",
                   image_size: int = 32) -> ModelSummary:
    """Parameters, MACs (on square inputs of image_size) and the paper's error on the dataset
    for a config, counted in closed form: nothing is built (shortcut None: the block type's
    default)."""
    counts = family_counts(depth, block, shortcut, num_classes, preact, image_size)
    shortcut = shortcut or default_shortcut(block)
    paper = paper_result(dataset, preact, block, depth, shortcut)
    return ModelSummary(
        name=model_name(depth, shortcut, preact),
        depth=depth,
        block=block,
        shortcut=shortcut,
        dataset=dataset,
        params=counts.params,
        macs=counts.macs,
        paper_error=paper.error if paper else None,
        paper_source=paper.source if paper else None,
        paper_note=paper.note if paper else None,
    )
