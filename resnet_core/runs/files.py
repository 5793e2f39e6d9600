"""Opening a run folder's files safely: no symbolic link followed, no FIFO waited on, and
its JSON records read with the one-line reason they cannot be."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Callable

import numpy as np

from .layout import MAX_JSON_BYTES, RunFolderError
from .values import MAX_COUNT, as_int, loads


def file_kind(mode: int) -> str:
    """What a file of this st_mode is, for a one-line message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def named_epochs(folder: Path, pattern: re.Pattern, file_name: Callable[[int], str]) -> list[int]:
    """The epochs, ascending, of the files in folder (predictions/, dynamics/) that pattern
    matches (its last group: the epoch's digits) and that are named exactly file_name(epoch);
    [] for a folder that is missing, not a folder or a symbolic link (no reader follows one).
    Never raises."""
    try:
        if Path(folder).is_symlink():
            return []
        names = os.listdir(folder)
    except (OSError, ValueError):  # none yet, not a folder, a path with a NUL
        return []
    epochs = []
    for name in names:
        m = pattern.match(name)
        # A name's number is a number from a file: an epoch (1-based) only within MAX_COUNT, which
        # every reader's int64 arrays hold (val_epoch_9223372036854775808.npz overflowed Explain's).
        epoch = as_int(int(m.group(m.lastindex)), 1, MAX_COUNT) if m else None
        # Only the name its reader reads (val_epoch_0001.npz is not epoch 1's).
        if epoch is not None and name == file_name(epoch):
            epochs.append(epoch)
    return sorted(epochs)


def open_run_file(run_dir: Path, name: str, follow_symlink: bool = False) -> BinaryIO:
    """Open a regular file of a run folder for reading; name is relative to run_dir
    ("status.json", "predictions/val_epoch_001.npz").

    No symbolic link below run_dir is followed, so a link planted in a run folder cannot
    make the dashboard show some other file, and a FIFO cannot hang a page (or a resume).
    follow_symlink follows a link at the file's own name (the trainer's resume reads its
    checkpoint so, then replaces the link with a file of its own). Raises
    FileNotFoundError when the file is missing and RunFolderError when it is anything but
    a readable regular file.
    """
    parts = PurePath(name).parts
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as e:  # e.g. a folder of another user's that this one may not read
        raise RunFolderError(f"the run folder cannot be opened ({e.strerror or e})") from e
    for depth, part in enumerate(parts, 1):
        last = depth == len(parts)
        # O_NONBLOCK: opening a FIFO must not wait for a writer (reads of regular files ignore it).
        flags = os.O_RDONLY | (os.O_NONBLOCK if last else os.O_DIRECTORY)
        if not (last and follow_symlink):
            flags |= os.O_NOFOLLOW
        try:
            child = os.open(part, flags, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            raise
        except OSError as e:
            why = _open_failure(e, part, fd)
            os.close(fd)
            raise RunFolderError(f"{'/'.join(parts[:depth])} {why}") from e
        os.close(fd)
        fd = child
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RunFolderError(f"{name} is {'a folder' if stat.S_ISDIR(mode) else 'not a regular file'}")
    return os.fdopen(fd, "rb")


def _open_failure(e: OSError, name: str, dir_fd: int) -> str:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):  # Linux says ENOTDIR for a link opened as a folder
        try:
            is_link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            is_link = e.errno == errno.ELOOP
        return "is a symbolic link" if is_link else "is not a folder"
    return f"cannot be opened ({e.strerror or e})"


def entry_kind(value: Any) -> str:
    """What a JSON value is, for a one-line message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def read_json_object(run_dir: Path, name: str) -> dict:
    """The JSON object in a run folder's file; FileNotFoundError when it is missing,
    RunFolderError for anything else that is not a JSON object. The one way to read a run
    folder's JSON record with the reason it cannot be (every reader, and the trainer's
    resume, read config.json so): no link followed, no FIFO waited on, at most
    MAX_JSON_BYTES, any number, any nesting."""
    with open_run_file(run_dir, name) as f:
        try:
            data = f.read(MAX_JSON_BYTES + 1)
        except OSError as e:
            raise RunFolderError(f"{name} cannot be read ({e.strerror or e})") from e
    if len(data) > MAX_JSON_BYTES:
        raise RunFolderError(f"{name} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    try:
        obj = loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFolderError(f"{name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{name} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise RunFolderError(f"{name} is nested too deeply to read") from None
    if not isinstance(obj, dict):
        raise RunFolderError(f"{name} holds {entry_kind(obj)}, not a JSON object")
    return obj


def read_json(path: Path) -> dict | None:
    """The JSON object in a run folder's file, or None when it is missing or is not one."""
    path = Path(path)
    try:
        return read_json_object(path.parent, path.name)
    except (OSError, RunFolderError):
        return None


def load_npz(run_dir: Path, name: str, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of a run folder's .npz archive (name relative to run_dir), read only when
    they take at most max_bytes uncompressed: a compressed archive can claim gigabytes of
    zeros in a few KB. Raises RunFolderError, in one line, for a file that is missing,
    damaged, larger or not an archive; the caller checks what the arrays hold."""
    try:
        with open_run_file(run_dir, name) as f:
            if f.read(6) == b"\x93NUMPY":  # np.load would read the whole array first
                raise RunFolderError(f"{name} holds a single array, not an .npz archive")
            f.seek(0)
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise RunFolderError(f"{name} is not an .npz archive")
            with npz:
                # Reading a member stops at the size the archive records for it, so this bounds memory.
                size = sum(member.file_size for member in npz.zip.infolist())
                if size > max_bytes:
                    raise RunFolderError(f"{name} holds {size / 2 ** 20:,.1f} MiB of arrays uncompressed, more "
                                         f"than the {max_bytes / 2 ** 20:,.1f} MiB it may take")
                return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise RunFolderError(f"{name} does not exist") from None
    except RunFolderError:
        raise
    except Exception as e:  # np.load fails on a damaged file in many ways (BadZipFile, ValueError,
        # EOFError, zlib.error, OSError...); to a reader each is the same damaged file
        detail = " ".join(str(e).split())[:80]
        raise RunFolderError(f"{name} cannot be read ({type(e).__name__}: {detail})") from e
