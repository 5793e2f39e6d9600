"""The CIFAR ResNet family without torch: its block types, shortcut options and valid
depths, and the paper's numbers (a network's name and the plain option, "none", are the run
format's: resnet_core.runs.layout). The config and the dashboard pages that draw no model
import it instead of resnet_core.models."""

from __future__ import annotations

from dataclasses import dataclass

from .runs.layout import PLAIN


def shortcut_label(shortcut: str) -> str:
    """A shortcut option as the UI shows it: "A", "B", "C" or "plain"."""
    return "plain" if shortcut == PLAIN else shortcut


BLOCKS = ("basic", "bottleneck")
SHORTCUTS = ("A", "B", "C", PLAIN)


def default_shortcut(block: str) -> str:
    """The shortcut option the papers used for a block type: A for basic, B for bottleneck."""
    return "A" if _check_block(block) == "basic" else "B"


def _layers_per_block(block: str) -> int:
    return 2 if block == "basic" else 3


def valid_depths(block: str, max_depth: int = 1202) -> list[int]:
    """All depths the block type allows, up to max_depth: 6n+2 (basic) or 9n+2 (bottleneck)."""
    step = 3 * _layers_per_block(_check_block(block))
    return list(range(step + 2, max_depth + 1, step))


def _check_block(block: str) -> str:
    if block not in BLOCKS:
        raise ValueError(f"unknown block type {block!r}; valid: {', '.join(BLOCKS)}")
    return block


def check_shortcut(shortcut: str) -> str:
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut option {shortcut!r}; valid: {', '.join(SHORTCUTS)}")
    return shortcut


def check_num_classes(num_classes: int) -> int:
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    return num_classes


def blocks_per_stage(depth: int, block: str) -> int:
    """n in depth = 6n+2 (basic) or 9n+2 (bottleneck); a ValueError names the nearest depths."""
    step = 3 * _layers_per_block(_check_block(block))
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise ValueError(f"depth must be an integer, got {depth!r}")
    if depth < step + 2 or (depth - 2) % step:
        below = max(step + 2, (depth - 2) // step * step + 2)
        above = below + step if below <= depth else below
        nearest = sorted({below, above})
        rule = f"{step}n+2 for {block} blocks"
        raise ValueError(f"depth {depth} is not {rule}; nearest: {', '.join(map(str, nearest))}")
    return (depth - 2) // step


@dataclass(frozen=True)
class FamilyCounts:
    """Sizes of one network of the family, in closed form from its block count: no weights
    are built, so ResNet-1202 and depth 10**30 alike take microseconds (building even on
    torch's meta device took minutes and gigabytes for depth 60002)."""

    params: int
    macs: int  # multiply-accumulates of one forward pass on an image of the given side (32: CIFAR's)
    activations: int  # per image, the values one training step keeps for backward (see below)


STAGE_WIDTHS = (16, 32, 64)


def stage_sides(image_size: int) -> tuple[int, ...]:
    """The feature-map side of each stage for a square input of image_size: the first keeps
    it, each later one halves it, rounding up as a stride-2 convolution with padding 1 (and
    shortcut A's [::2] subsampling) does: 32 -> 32, 16, 8; 48 -> 48, 24, 12; 33 -> 33, 17, 9."""
    sides = [image_size]
    for _ in STAGE_WIDTHS[1:]:
        sides.append(-(-sides[-1] // 2))
    return tuple(sides)


def family_counts(depth: int, block: str, shortcut: str | None = None, num_classes: int = 10,
                  preact: bool = False, image_size: int = 32) -> FamilyCounts:
    """Parameters, MACs and kept activations of a network on square inputs of image_size
    (shortcut None: the block type's default); a ValueError for an impossible depth, as
    blocks_per_stage. MACs and activations grow with the maps' areas; the parameters do not
    (the global pooling makes the classifier size-free). Pre-activation
    (preact) has the same convolutions; its BatchNorms sit before them (on a unit's input
    width instead of its output's), its projections have none, its stem none and a final
    one before the pooling.

    Activations: two values per convolution output (the convolution's output, kept for
    BatchNorm's backward, and the ReLU's output, kept for its own and the next convolution's
    backward). Autograd keeps a few more (BatchNorm's output where no ReLU follows, the
    shortcut's), so this is a lower bound of what training holds."""
    n = blocks_per_stage(depth, block)
    shortcut = check_shortcut(shortcut or default_shortcut(block))
    check_num_classes(num_classes)
    expansion = 1 if block == "basic" else 4
    stem_area = image_size * image_size
    params, macs, acts = 3 * 16 * 9 + (0 if preact else 2 * 16), 16 * stem_area * 3 * 9, 2 * 16 * stem_area
    in_planes, side_in = 16, image_size
    for planes, side in zip(STAGE_WIDTHS, stage_sides(image_size), strict=True):
        out_planes = planes * expansion
        for count, (c_in, s_in) in ((1, (in_planes, side_in)), (n - 1, (out_planes, side))):
            if count == 0:
                continue
            area, projects = side * side, shortcut == "C" or (shortcut == "B" and (c_in != out_planes or s_in != side))
            if block == "basic":  # 3x3 (stride) then 3x3
                p = c_in * planes * 9 + planes * planes * 9 + (2 * c_in + 2 * planes if preact else 4 * planes)
                m = area * planes * (c_in * 9 + planes * 9)
                a = 2 * 2 * planes * area
            else:  # 1x1 at the input's size, 3x3 (stride), 1x1 to 4x the width
                bn = 2 * c_in + 4 * planes if preact else 4 * planes + 2 * out_planes
                p = c_in * planes + planes * planes * 9 + planes * out_planes + bn
                m = s_in * s_in * planes * c_in + area * planes * planes * 9 + area * out_planes * planes
                a = 2 * (planes * s_in * s_in + planes * area + out_planes * area)
            if projects:  # a 1x1 convolution, + BN (which keeps its output) in the original order
                p += c_in * out_planes + (0 if preact else 2 * out_planes)
                m, a = m + area * out_planes * c_in, a + (0 if preact else out_planes * area)
            params, macs, acts = params + count * p, macs + count * m, acts + count * a
        in_planes, side_in = out_planes, side
    params += in_planes * num_classes + num_classes + (2 * in_planes if preact else 0)
    return FamilyCounts(params=params, macs=macs + in_planes * num_classes, activations=acts)


TABLE_6 = "He et al. 2016, Table 6"
IDENTITY_TABLE_3 = 'He et al. 2016, "Identity Mappings", Table 3 (original unit)'
IDENTITY_TABLE_3_PREACT = 'He et al. 2016, "Identity Mappings", Table 3 (pre-activation unit)'
NO_PAPER_RESULT = "the paper reports no CIFAR error for this combination"
# "Identity Mappings" (section 3.1): "we report the median accuracy of 5 runs for each
# architecture on CIFAR"; its Table 4 adds the mean ± std of the pre-activation ResNet-1001.
MEDIAN_OF_5 = "median of 5 runs"


@dataclass(frozen=True)
class PaperResult:
    error: float  # test error (%) on the dataset of its key, as the paper reports it
    source: str
    note: str | None = None  # how the paper got the number, where it is not a single run

    @property
    def text(self) -> str:
        return f"{self.error:.2f}%" + (f" ({self.note})" if self.note else "")


# Only the combinations the papers trained, keyed (dataset, preact, block, depth, shortcut):
# Table 6 uses option A throughout; "Identity Mappings" Table 3 trains bottlenecks with
# projection shortcuts (B) where the shape changes, on CIFAR-10 and CIFAR-100.
PAPER_RESULTS = {
    ("cifar10", False, "basic", 20, "A"): PaperResult(8.75, TABLE_6),
    ("cifar10", False, "basic", 32, "A"): PaperResult(7.51, TABLE_6),
    ("cifar10", False, "basic", 44, "A"): PaperResult(7.17, TABLE_6),
    ("cifar10", False, "basic", 56, "A"): PaperResult(6.97, TABLE_6),
    ("cifar10", False, "basic", 110, "A"): PaperResult(6.43, TABLE_6, "best of 5 runs; mean 6.61 ± 0.16"),
    ("cifar10", False, "basic", 1202, "A"): PaperResult(7.93, TABLE_6),
    ("cifar10", False, "bottleneck", 164, "B"): PaperResult(5.93, IDENTITY_TABLE_3, MEDIAN_OF_5),
    ("cifar10", False, "bottleneck", 1001, "B"): PaperResult(7.61, IDENTITY_TABLE_3, MEDIAN_OF_5),
    ("cifar10", True, "bottleneck", 164, "B"): PaperResult(5.46, IDENTITY_TABLE_3_PREACT, MEDIAN_OF_5),
    ("cifar10", True, "bottleneck", 1001, "B"): PaperResult(4.92, IDENTITY_TABLE_3_PREACT,
                                                            f"{MEDIAN_OF_5}; mean 4.89 ± 0.14"),
    ("cifar100", False, "bottleneck", 164, "B"): PaperResult(25.16, IDENTITY_TABLE_3, MEDIAN_OF_5),
    ("cifar100", False, "bottleneck", 1001, "B"): PaperResult(27.82, IDENTITY_TABLE_3, MEDIAN_OF_5),
    ("cifar100", True, "bottleneck", 164, "B"): PaperResult(24.33, IDENTITY_TABLE_3_PREACT, MEDIAN_OF_5),
    ("cifar100", True, "bottleneck", 1001, "B"): PaperResult(22.71, IDENTITY_TABLE_3_PREACT,
                                                             f"{MEDIAN_OF_5}; mean 22.68 ± 0.22"),
}


def paper_result(dataset: str, preact: bool, block: str, depth: int, shortcut: str) -> PaperResult | None:
    """The test error a paper reports for exactly this network on this dataset, or None."""
    return PAPER_RESULTS.get((dataset, preact, block, depth, shortcut))
