"""``data_files.json``: each image's file, for runs whose data came from files (see
:mod:`resnet_core.runs.folder_format`): written once by the run's writer, read by the
galleries to name an image by its path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .files import open_run_file
from .layout import RunFolderError

DATA_FILES = "data_files.json"
DATA_FILE_SPLITS = ("train", "test")
# The file's size, at most: 100,000 images of paths 60 characters long take 6.4 MB, so this
# allows about a million, while a reader never holds more than this for one run.
MAX_DATA_FILES_BYTES = 64 << 20


def data_files_json(train: Sequence[str], test: Sequence[str]) -> bytes:
    """The file's bytes: {"train": [...], "test": [...]}, each split's relative POSIX paths in
    its arrays' index order; a ValueError for a path that is absolute, empty or climbs out
    ("..")."""
    files = {"train": [str(p) for p in train], "test": [str(p) for p in test]}
    for split, paths in files.items():
        bad = next((p for p in paths if not _relative(p)), None)
        if bad is not None:
            raise ValueError(f"{split} path {bad!r} is not a relative POSIX path inside the data folder")
    return json.dumps(files, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _relative(path) -> bool:
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        return False
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts


def read_data_files(run_dir) -> dict[str, list[str]] | None:
    """{"train": paths, "test": paths} from the run's data_files.json, or None where the run
    has none or it is not as the format says (not UTF-8 JSON, over MAX_DATA_FILES_BYTES, a
    split missing or not a list of relative paths, a link, folder or FIFO): never raises."""
    try:
        with open_run_file(Path(run_dir), DATA_FILES) as f:
            data = f.read(MAX_DATA_FILES_BYTES + 1)
        if len(data) > MAX_DATA_FILES_BYTES:
            return None
        record = json.loads(data.decode("utf-8"))
    except (OSError, RunFolderError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    out = {split: record.get(split) for split in DATA_FILE_SPLITS}
    if not all(isinstance(paths, list) and all(_relative(p) for p in paths) for paths in out.values()):
        return None
    return out
