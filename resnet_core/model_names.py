"""The CIFAR ResNet family without torch: its block types, shortcut options and valid
depths, and how the studio names networks. The config, the run-folder readers and the
dashboard pages that draw no model import it instead of resnet_core.models."""

from __future__ import annotations

from dataclasses import dataclass

PLAIN = "none"  # the shortcut option of plain networks


def model_name(depth, shortcut: str | None) -> str:
    """How the paper names a network: "plain-20" without shortcuts, else "ResNet-20"."""
    return f"{'plain' if shortcut == PLAIN else 'ResNet'}-{depth}"


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


TABLE_6 = "He et al. 2016, Table 6"
IDENTITY_TABLE_3 = 'He et al. 2016, "Identity Mappings", Table 3 (original unit)'
NO_PAPER_RESULT = "the paper reports no CIFAR error for this combination"


@dataclass(frozen=True)
class PaperResult:
    error: float  # CIFAR-10 test error (%) as the paper reports it
    source: str
    note: str | None = None  # how the paper got the number, where it is not a single run

    @property
    def text(self) -> str:
        return f"{self.error:.2f}%" + (f" ({self.note})" if self.note else "")


# Only the combinations the papers trained: Table 6 uses option A throughout, the
# bottleneck numbers come from projection shortcuts (B) where the shape changes.
PAPER_RESULTS = {
    ("basic", 20, "A"): PaperResult(8.75, TABLE_6),
    ("basic", 32, "A"): PaperResult(7.51, TABLE_6),
    ("basic", 44, "A"): PaperResult(7.17, TABLE_6),
    ("basic", 56, "A"): PaperResult(6.97, TABLE_6),
    ("basic", 110, "A"): PaperResult(6.43, TABLE_6, "best of 5 runs; mean 6.61 ± 0.16"),
    ("basic", 1202, "A"): PaperResult(7.93, TABLE_6),
    ("bottleneck", 164, "B"): PaperResult(5.93, IDENTITY_TABLE_3),
    ("bottleneck", 1001, "B"): PaperResult(7.61, IDENTITY_TABLE_3),
}


def paper_result(block: str, depth: int, shortcut: str) -> PaperResult | None:
    """The CIFAR-10 test error a paper reports for exactly this network, or None."""
    return PAPER_RESULTS.get((block, depth, shortcut))
