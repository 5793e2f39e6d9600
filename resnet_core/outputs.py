"""Files written at a path a user gave (``export --out``, the dataset download): a new name
or a regular file, replaced whole, never anything else.

Replacing the entry at such a path with a rename would turn a symbolic link, a device node
(as root, ``/dev/null``), a FIFO or ``/proc/self/fd/1`` into a regular file; opening it for
writing would write wherever a link points, or hang on a FIFO. So the target is checked with
``os.lstat`` (nothing followed) and refused in one line unless it is missing or a regular
file; the new file is written under a fresh temporary name beside it and renamed over it
(``os.replace``), so a reader sees the old file or the new one, never half of one, and a
failed write leaves the old file as it was. A symbolic link is refused even where it leads
to a regular file: the user named the link, and neither it nor its target is ours to replace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from .runs.files import file_kind


class OutputRefused(ValueError):
    """A path to write at that is not a new name or a regular file, or has no folder: one line."""


def check_output_path(path: str | os.PathLike, what: str) -> Path:
    """path, if a file may be written there: a new name in an existing folder, or a regular
    file (to be replaced whole). OutputRefused, naming `what` (the flag, e.g. "--out") and
    what the path is, for anything else."""
    if str(path).endswith(("/", os.sep)):  # pathlib would drop the slash and write a file there
        raise OutputRefused(f"{what} {path} names a folder (it ends in /): give a file name")
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:  # e.g. a parent that is a file, or one this user may not search
        raise OutputRefused(f"{what} {path} cannot be checked ({e.strerror or e})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputRefused(f"{what} {path} is {file_kind(mode)}, not a regular file or a new name: "
                            "nothing is written there")
    if not path.parent.is_dir():
        raise OutputRefused(f"{what} {path}: {path.parent} is not a folder")
    # The new file is made beside it (see replacing), so its folder must take one.
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputRefused(f"{what} {path}: {path.parent} is not writable")
    return path


@contextlib.contextmanager
def replacing(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Write a file at path: yields a fresh temporary name beside it (not created: writers
    create it with the usual permissions); on a clean exit that file replaces path in one
    rename, otherwise it is removed and path left as it was. path is checked
    (check_output_path) before and again right before the rename."""
    path = check_output_path(path, what)
    # The name cut to fit a folder's limit (255 bytes a name on Linux) with the 19 bytes added.
    stem = os.fsencode(path.name)[:200].decode(errors="ignore")
    tmp = path.parent / f".{stem}.{secrets.token_hex(6)}.tmp"
    try:
        yield tmp
        check_output_path(path, what)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
