"""How the studio names networks, without importing torch (the run-folder readers use it)."""

from __future__ import annotations

PLAIN = "none"  # the shortcut option of plain networks


def model_name(depth, shortcut: str | None) -> str:
    """How the paper names a network: "plain-20" without shortcuts, else "ResNet-20"."""
    return f"{'plain' if shortcut == PLAIN else 'ResNet'}-{depth}"


def shortcut_label(shortcut: str) -> str:
    """A shortcut option as the UI shows it: "A", "B", "C" or "plain"."""
    return "plain" if shortcut == PLAIN else shortcut
