"""The image folders Home lists (no Streamlit here): those folder runs trained on, as their
records say, and each folder of the data folder that holds a train/ folder; for each, its
scan's counts and which decoded copies the runs folder's cache holds.

The runs are read through :func:`resnet_core.runs.list_runs`, which never raises: a run
whose record is damaged or odd is passed over, never shown as a folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import runs
from ..cifar import IMAGE_FOLDER, IMAGE_SIZE
from ..formatting import md_escape
from ..image_folder import cache_folder, cache_path
from ..images import RESIZE_RULES
from ..runs.values import as_int
from .folder_preview import FolderPreview

DEFAULT_SETTINGS = ((IMAGE_SIZE, "crop"),)  # a folder no run trained on: the trainer's defaults


@dataclass(frozen=True)
class KnownFolder:
    root: str  # absolute, links followed
    runs: int  # folder runs recorded on it
    settings: tuple[tuple[int, str], ...]  # (image size, resize rule) of its runs, sorted; DEFAULT_SETTINGS if none


def _root_of(info: runs.RunInfo) -> str | None:
    """The image folder a folder run trained on (its resolved data_dir), links followed; None
    for any other run, or a record without a usable path."""
    config = info.train_config
    root = info.resolved.get("data_dir") or config.get("data_dir")
    if config.get("dataset") != IMAGE_FOLDER or not isinstance(root, str) or not root or "\0" in root:
        return None
    return os.path.realpath(root)


def _run_folders(runs_dir: Path) -> dict[str, tuple[int, set[tuple[int, str]]]]:
    """root -> (folder runs recorded on it, the (image size, resize rule) of each)."""
    found: dict[str, tuple[int, set[tuple[int, str]]]] = {}
    for info in runs.list_runs(runs_dir):
        root = _root_of(info)
        if root is None:
            continue
        count, settings = found.get(root, (0, set()))
        size = as_int(info.train_config.get("image_size", IMAGE_SIZE), 1, 1 << 16)
        rule = info.train_config.get("resize", "crop")
        if size is not None and rule in RESIZE_RULES:
            settings.add((size, rule))
        found[root] = (count + 1, settings)
    return found


def _data_folder_children(data_dir: Path) -> list[str]:
    """The folders of the data folder that hold a train/ folder, links followed."""
    try:
        children = sorted(data_dir.expanduser().iterdir())
    except OSError:  # no data folder yet, or one we may not list
        return []
    return [os.path.realpath(p) for p in children if not p.name.startswith(".") and (p / "train").is_dir()]


def known_folders(runs_dir: str | os.PathLike, data_dir: str | os.PathLike) -> list[KnownFolder]:
    """The image folders runs were trained on and those in the data folder, by path."""
    from_runs = _run_folders(Path(runs_dir))
    in_data = set(_data_folder_children(Path(data_dir)))
    out = []
    for root in sorted(set(from_runs) | in_data):
        count, settings = from_runs.get(root, (0, set()))
        out.append(KnownFolder(root, count, tuple(sorted(settings)) or DEFAULT_SETTINGS))
    return out


def cached_settings(folder: KnownFolder, runs_dir: str | os.PathLike) -> tuple[tuple[int, str], ...]:
    """Which of the folder's settings have a decoded copy in the runs folder's cache (a file
    there; whether it is still current is judged when a run loads it)."""
    cache = cache_folder(runs_dir)
    return tuple(s for s in folder.settings if cache_path(cache, Path(folder.root), *s).is_file())


def folder_line(folder: KnownFolder, preview: FolderPreview, cached: tuple[tuple[int, str], ...]) -> str:
    """The folder in one markdown line: its path, classes and images (or why it cannot be
    used), the runs trained on it, and its decoded copies."""
    # A code span shows its text as it is (markdown escapes would show as backslashes in it).
    where = f"`{folder.root}`" if "`" not in folder.root else md_escape(folder.root)
    if preview.error is not None:
        return f"{where}: {md_escape(preview.error)}"
    images = f"{sum(preview.train_counts):,} images in train/"
    test = f", {sum(preview.test_counts):,} in test/" if preview.test_counts is not None else ", no test/"
    parts = [f"{len(preview.classes)} classes", images + test]
    if folder.runs:
        parts.append(f"{folder.runs} run{'s' if folder.runs > 1 else ''}")
    decoded = ", ".join(f"{size}x{size} {rule}" for size, rule in cached)
    parts.append(f"decoded: {decoded}" if decoded else "not decoded yet")
    return f"{where}: " + " · ".join(parts)

