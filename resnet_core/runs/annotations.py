"""A run's annotations: the display name, tags and note a user gives it. The dashboard keeps
them in the run folder's ``annotations.json``, its own file, which the trainer never writes;
tags and a note given at launch (``--tag``, ``--note``) are config.json's ``tags`` and ``note``
and stand until the dashboard saves annotations (format: resnet_core/runs/folder_format.py)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .files import read_json_object

ANNOTATIONS_FILE = "annotations.json"
MAX_NAME_CHARS = 80
MAX_TAG_CHARS = 32
MAX_TAGS = 20
MAX_NOTE_CHARS = 2000
# A tag is one token that reads the same in a URL, a CSV cell and a shell: letters (any
# script), digits and - _ . : + = /, starting with a letter or digit.
TAG = re.compile(r"[^\W_][\w.:+=/-]*")
TAG_CHARS = "letters, digits and - _ . : + = /"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Annotations:
    """What a user calls a run and notes about it; each part empty where none is given."""

    name: str = ""
    tags: tuple[str, ...] = ()
    note: str = ""
    updated: float | None = None  # unix s of the dashboard's last save; None: launch values, or none

    def record(self) -> dict:
        """annotations.json's object."""
        return {"name": self.name, "tags": list(self.tags), "note": self.note, "updated": self.updated}


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def checked_tags(tags: Iterable[Any]) -> tuple[str, ...]:
    """The tags trimmed, each checked, duplicates dropped (the first kept); ValueError, in one
    line, for a tag that is empty, too long or holds other characters, or too many tags."""
    kept: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"a tag is text, not {type(tag).__name__}")
        tag = tag.strip()
        if not tag:
            raise ValueError("a tag is empty: give at least one letter or digit")
        if len(tag) > MAX_TAG_CHARS:
            raise ValueError(f"tag {_shown(tag)} is longer than {MAX_TAG_CHARS} characters")
        if not TAG.fullmatch(tag):
            raise ValueError(f"tag {_shown(tag)} may hold only {TAG_CHARS}, starting with a letter or digit "
                             f"(no spaces)")
        if tag not in kept:
            kept.append(tag)
    if len(kept) > MAX_TAGS:
        raise ValueError(f"{len(kept)} tags: a run takes at most {MAX_TAGS}")
    return tuple(kept)


def checked_note(note: Any) -> str:
    """The note trimmed; ValueError for one that is not text, is longer than MAX_NOTE_CHARS or
    holds control characters other than line breaks and tabs."""
    if not isinstance(note, str):
        raise ValueError(f"a note is text, not {type(note).__name__}")
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"the note has {len(note):,} characters: at most {MAX_NOTE_CHARS:,}")
    if CONTROL.search(note.replace("\n", "").replace("\t", "").replace("\r", "")):
        raise ValueError("the note holds control characters: only text, line breaks and tabs")
    return note


def checked_name(name: Any) -> str:
    """The display name trimmed; ValueError for one that is not one line of text of at most MAX_NAME_CHARS."""
    if not isinstance(name, str):
        raise ValueError(f"a name is text, not {type(name).__name__}")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"the name has {len(name)} characters: at most {MAX_NAME_CHARS}")
    if CONTROL.search(name):
        raise ValueError("the name is one line of text: no line breaks or control characters")
    return name


def checked_annotations(name: Any = "", tags: Iterable[Any] = (), note: Any = "",
                        updated: float | None = None) -> Annotations:
    """Annotations from what a user typed, each part checked (ValueError, one line, the first problem)."""
    return Annotations(checked_name(name), checked_tags(tags), checked_note(note), updated)


def annotations_record(record: dict) -> Annotations:
    """annotations.json's object read; ValueError where it is not the format (a missing part is empty)."""
    tags, updated = record.get("tags", []), record.get("updated")
    if not isinstance(tags, list):
        raise ValueError("tags is not a list")
    if updated is not None and (isinstance(updated, bool) or not isinstance(updated, (int, float))
                                or not math.isfinite(updated)):
        raise ValueError("updated is not a time")
    return checked_annotations(record.get("name", ""), tags, record.get("note", ""),
                               None if updated is None else float(updated))


def launch_annotations(config: Any) -> Annotations:
    """The tags and note config.json recorded at launch (--tag, --note); none where they are not the format."""
    if not isinstance(config, dict):
        return Annotations()
    tags = config.get("tags", [])
    try:
        if not isinstance(tags, list):
            raise ValueError("tags is not a list")
        return checked_annotations(tags=tags, note=config.get("note", ""))
    except ValueError:
        return Annotations()


def read_annotations(run_dir: Path, config: Any = None) -> Annotations:
    """The run's annotations: annotations.json's when the folder holds a readable one, else the
    launch values of its config.json (config: that record, read already). Never raises: a file
    that is not the format (damaged, not JSON, a symbolic link, a part of the wrong type or
    beyond a limit) reads as absent."""
    try:
        return annotations_record(read_json_object(Path(run_dir), ANNOTATIONS_FILE))
    except (OSError, ValueError):  # RunFolderError is a ValueError
        return launch_annotations(config)


def write_annotations(run_dir: Path, name: Any = "", tags: Iterable[Any] = (), note: Any = "") -> Annotations:
    """Check and save a run's annotations (the dashboard's edit) atomically, stamped now;
    ValueError, in one line, for a part that is not allowed or a run folder that is a
    symbolic link; OSError where the folder takes no writes."""
    from .writing import atomic_write_json  # here: writing imports reading (via cleanup), which imports this

    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise ValueError(f"{run_dir.name} is a symbolic link, not a run folder: nothing is written through it")
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir.name} is not a run folder (deleted?)")
    annotations = checked_annotations(name, tags, note, time.time())
    atomic_write_json(run_dir / ANNOTATIONS_FILE, annotations.record())
    return annotations
