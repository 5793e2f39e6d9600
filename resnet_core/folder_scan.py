"""What an image folder holds, found without decoding an image: its classes and files.

The layout is torchvision's ImageFolder, split in two: ``ROOT/train/<class>/...`` and,
optionally, ``ROOT/test/<class>/...``. The classes are the sorted names of train/'s
folders, each image's label the index of its class, and a class's images are its files
at any depth (links to files and folders followed), as sorted relative POSIX paths;
a split's arrays hold the classes one after another, as ImageFolder does.

An image is a file named .png, .jpg, .jpeg or .webp (any case); any other file, and any
hidden name (starting with "."; a macOS copy leaves "._x.jpg" files that are not images),
is ignored and counted. A link to a folder already scanned (a symlink loop, or a second
link to one folder) is skipped and said in ``problems``, so a scan always ends, as is a
broken link. An image whose path is not UTF-8 or holds a backslash is left out and said:
the run records each image's path as UTF-8 POSIX text (a class folder so named is refused).
Everything else that makes the folder unusable is a DataError in one line:
a missing or unreadable root or folder, no train/, a class folder without images, fewer
than two classes, test/ classes that train/ lacks.

Cost: one ``os.scandir`` walk and one ``stat`` per image (its size and modification time
key the decoded cache), a few tuples per file, never PIL. 100,000 tiny files (10 classes)
were scanned in 0.54-0.68 s at 27 MB peak Python memory on this 2-core machine, and
CIFAR-10's 60,000 PNGs in 0.3-0.4 s (tests/folder_timings.py, by hand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cifar import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp"})
SPLITS = ("train", "test")


@dataclass(frozen=True)
class SplitFiles:
    """One split's images, in the order its arrays hold them."""

    files: tuple[str, ...]  # relative POSIX paths from the root, e.g. "train/cat/001.png"
    labels: np.ndarray  # (n,) int64, indices into FolderScan.classes
    sizes: np.ndarray  # (n,) int64 bytes
    mtimes: np.ndarray  # (n,) int64 st_mtime_ns
    counts: tuple[int, ...]  # images per class, in class order

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class FolderScan:
    root: Path  # as resolved (links followed)
    classes: tuple[str, ...]
    train: SplitFiles
    test: SplitFiles | None  # None where ROOT has no test/
    ignored: int  # files that are not images (by name), hidden entries included
    problems: tuple[str, ...]  # one line each: links skipped, test/ classes without images...


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def recordable(path: str) -> bool:
    """Whether a relative path can be written into the run's record as it is: UTF-8 (a name
    the filesystem holds as other bytes reads back with surrogates) without backslashes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\" not in path


class _Walk:
    """The running totals of one scan: folders seen (by device and inode), ignored, problems."""

    def __init__(self, root: Path):
        self.root = root
        self.seen: set[tuple[int, int]] = set()
        self.ignored = 0
        self.problems: list[str] = []
        self.unrecordable: list[str] = []  # images whose paths the run's record cannot hold

    def listing(self, rel: str) -> list[os.DirEntry]:
        """The folder's entries, real ones before links, by name: a folder and a link to it are
        always met in that order, so the link is the one skipped, whatever order the filesystem
        lists them in (on ext4 a link train/animal -> zebra claimed the class and zebra was
        'a link to a folder already scanned')."""
        try:
            with os.scandir(self.root / rel) as it:
                return sorted(it, key=lambda entry: (entry.is_symlink(), entry.name))
        except OSError as e:
            raise DataError(f"{self.root / rel}: cannot be read ({e.strerror or e})") from None

    def first_visit(self, rel: str, entry: os.DirEntry | None = None) -> bool:
        """Whether the folder at rel is new to this scan (False for a link back to one seen)."""
        st = entry.stat() if entry is not None else os.stat(self.root / rel)
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            self.problems.append(f"{rel}: a link to a folder already scanned (a symlink loop?), skipped")
            return False
        self.seen.add(key)
        return True

    def kind(self, rel: str, entry: os.DirEntry) -> str:
        """"dir", "file" or "" (anything else, said where it is a broken or looping link)."""
        try:
            if entry.is_dir():
                return "dir"
            if entry.is_file():
                return "file"
        except OSError as e:  # a link to itself: ELOOP
            self.problems.append(f"{rel}: {e.strerror or e}, skipped")
            return ""
        if entry.is_symlink():
            self.problems.append(f"{rel}: a broken link, skipped")
        return ""

    def images(self, rel: str) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every image under the folder rel, sorted by path."""
        found, stack = [], [rel]
        while stack:
            folder = stack.pop()
            for entry in self.listing(folder):
                path = f"{folder}/{entry.name}"
                if entry.name.startswith("."):
                    self.ignored += 1
                    continue
                kind = self.kind(path, entry)
                if kind == "dir" and self.first_visit(path, entry):
                    stack.append(path)
                elif kind == "file" and is_image_name(entry.name) and not recordable(path):
                    self.unrecordable.append(path)
                elif kind == "file" and is_image_name(entry.name):
                    st = entry.stat()
                    found.append((path, st.st_size, st.st_mtime_ns))
                elif kind == "file":
                    self.ignored += 1
        found.sort()
        return found

    def class_folders(self, split: str) -> list[str]:
        """The sorted class folder names of a split; its loose files are ignored (counted)."""
        names = []
        for entry in self.listing(split):
            if entry.name.startswith("."):
                self.ignored += 1
            elif (kind := self.kind(f"{split}/{entry.name}", entry)) == "dir":
                if not recordable(entry.name):
                    raise DataError(f"{split}/{entry.name!r}: a class folder's name must be UTF-8 without "
                                    "backslashes (it becomes the class's name in the run's record): rename it")
                if self.first_visit(f"{split}/{entry.name}", entry):
                    names.append(entry.name)
            elif kind == "file":
                self.ignored += 1
        return sorted(names)

    def split(self, split: str, classes: tuple[str, ...], folders: list[str]) -> SplitFiles:
        rows: list[tuple[str, int, int]] = []
        labels: list[int] = []
        counts = [0] * len(classes)
        for name in folders:
            found = self.images(f"{split}/{name}")
            if not found:
                raise DataError(f"{self.root / split / name} holds no images (PNG, JPEG or WebP): "
                                "remove the empty class folder or add its images")
            label = classes.index(name)
            counts[label] = len(found)
            rows.extend(found)
            labels.extend([label] * len(found))
        return SplitFiles(files=tuple(r[0] for r in rows), labels=np.asarray(labels, dtype=np.int64),
                          sizes=np.fromiter((r[1] for r in rows), np.int64, len(rows)),
                          mtimes=np.fromiter((r[2] for r in rows), np.int64, len(rows)), counts=tuple(counts))


def _root(root: str | os.PathLike) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"image folder {path} {'is not a folder' if path.exists() else 'does not exist'}")
    if not (path / "train").is_dir():
        raise DataError(f"image folder {path} has no train/ folder: expected {path}/train/<class>/<images> "
                        "(and optionally test/<class>/<images>)")
    return path.resolve()


def scan_image_folder(root: str | os.PathLike) -> FolderScan:
    """The classes and image files of the image folder at root (the module docstring says
    what counts); DataError, one line, where it cannot be trained on."""
    root = _root(root)
    walk = _Walk(root)
    walk.first_visit(".")
    walk.first_visit("train")
    train_folders = walk.class_folders("train")
    if len(train_folders) < 2:
        raise DataError(f"{root / 'train'} holds {len(train_folders)} class folder"
                        f"{'' if len(train_folders) == 1 else 's'}: a classifier needs at least two")
    classes = tuple(train_folders)
    train = walk.split("train", classes, train_folders)
    test = None
    if (root / "test").is_dir():
        walk.first_visit("test")
        test_folders = walk.class_folders("test")
        unknown = [name for name in test_folders if name not in classes]
        if unknown:
            raise DataError(f"{root / 'test'} has classes that train/ lacks: {', '.join(unknown[:5])}"
                            f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''}")
        if not test_folders:
            raise DataError(f"{root / 'test'} holds no class folders: fill it, or remove it to hold out "
                            "part of train/ as the test split")
        test = walk.split("test", classes, test_folders)
        missing = [c for c, n in zip(classes, test.counts, strict=True) if n == 0]
        if missing:
            walk.problems.append(f"test/ has no images of {len(missing)} class{'es' if len(missing) > 1 else ''}: "
                                 f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if walk.unrecordable:
        n = len(walk.unrecordable)
        walk.problems.append(f"{n:,} image{'s' if n > 1 else ''} left out: paths that are not UTF-8 or hold a "
                             f"backslash, which the run's record cannot hold: "
                             f"{', '.join(repr(p) for p in walk.unrecordable[:3])}{' ...' if n > 3 else ''}")
    return FolderScan(root=root, classes=classes, train=train, test=test, ignored=walk.ignored,
                      problems=tuple(walk.problems))
