"""What the Train form shows of an image folder before a run trains on it (no Streamlit here).

:func:`preview_folder` scans the folder (:func:`resnet_core.folder_scan.scan_image_folder`:
its classes and files, or the one-line DataError that refuses it), reads the headers of
a sample of SAMPLED_FILES images for their sizes and modes (PIL reads a header without
decoding a pixel), and decodes SHOWN_PER_CLASS images of each of the first SHOWN_CLASSES
classes through the trainer's own decoder at the form's image size and resize rule, so
the preview shows what the network will see. Nothing else is decoded: on 100,000 tiny
PNGs (10 classes) the scan took 0.44-0.46 s and the whole preview 0.45-0.47 s on this
2-core machine (load 2-3), and the preview pickles to 127 KB (st.cache_data copies it).

The split-dependent parts (the test share carved from each class when the folder has no
test/) take the form's test_size and are cheap: :func:`split_counts`, :func:`counts_rows`,
:func:`split_note`, :func:`folder_warnings`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..cifar import DataError
from ..folder_dataset import held_out
from ..folder_scan import FolderScan, scan_image_folder
from ..images import FORMATS, ImageRefused, decode_image_file

SAMPLED_FILES = 200  # image headers read for the size statistics
SHOWN_PER_CLASS = 4
SHOWN_CLASSES = 10  # classes whose images are shown (the first ones, in class order)
FEW_IMAGES = 10  # a class with fewer training images than this is said
IMBALANCE = 10  # largest / smallest class above this is said


@dataclass(frozen=True)
class SizeStats:
    """Sizes and modes of the images whose header was read: a sample of the folder."""

    sampled: int  # headers read
    of: int  # images in the folder (train/ and test/)
    widths: tuple[int, int, int]  # min, median, max (pixels, as stored: before EXIF rotation)
    heights: tuple[int, int, int]
    modes: tuple[tuple[str, int], ...]  # PIL mode and how many of the sample, most common first
    smaller: int  # of the sample, images with a side under the image size: upscaled
    unreadable: tuple[str, ...]  # one line each: sampled files whose header could not be read


@dataclass(frozen=True)
class Shown:
    """One image of the preview, decoded as the run will decode it."""

    label: int
    path: str  # relative to the root, e.g. "train/cat/001.png"
    image: np.ndarray | None  # (3, S, S) uint8; None where it could not be decoded
    problem: str = ""  # why not, in one line


@dataclass(frozen=True)
class FolderPreview:
    root: str  # as typed
    error: str | None = None  # the one line that refuses the folder; the fields below are empty then
    classes: tuple[str, ...] = ()
    train_counts: tuple[int, ...] = ()  # images in train/ per class
    test_counts: tuple[int, ...] | None = None  # images in test/ per class; None: the folder has no test/
    ignored: int = 0  # files that are not images
    problems: tuple[str, ...] = ()  # the scan's warnings
    image_size: int = 32
    resize: str = "crop"
    sizes: SizeStats | None = None  # None: not asked for (images=False)
    shown: tuple[Shown, ...] = ()


def preview_folder(root: str | os.PathLike, image_size: int = 32, resize: str = "crop", *,
                   images: bool = True) -> FolderPreview:
    """The preview of the image folder at root (module docstring); with images=False only its
    scan (what the form's validation needs). Never raises for a folder that cannot be used:
    its one line is ``error``."""
    try:
        scan = scan_image_folder(root)
    except DataError as e:
        return FolderPreview(root=str(root), error=str(e), image_size=image_size, resize=resize)
    base = FolderPreview(root=str(root), classes=scan.classes,
                         train_counts=scan.train.counts, test_counts=scan.test.counts if scan.test else None,
                         ignored=scan.ignored, problems=scan.problems, image_size=image_size, resize=resize)
    if not images:
        return base
    return replace(base, sizes=sample_sizes(scan, image_size), shown=shown_images(scan, image_size, resize))


def _spread(n: int, k: int) -> np.ndarray:
    """At most k indices into range(n), evenly spread, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


def _header(path: str) -> tuple[int, int, str]:
    """(width, height, mode) from the file's header; PIL decodes no pixel for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path, formats=FORMATS) as im:
            return im.size[0], im.size[1], im.mode


def sample_sizes(scan: FolderScan, image_size: int, limit: int = SAMPLED_FILES) -> SizeStats:
    """The sizes and modes of at most `limit` images spread over the folder's files."""
    files = scan.train.files + (scan.test.files if scan.test is not None else ())
    nbytes = np.concatenate([scan.train.sizes, *([scan.test.sizes] if scan.test is not None else [])])
    sizes, modes, unreadable = [], {}, []
    for i in _spread(len(files), limit):
        if nbytes[i] == 0:  # PIL calls it "not an image"; the trainer refuses it as empty
            unreadable.append(f"{files[i]}: empty file")
            continue
        try:
            width, height, mode = _header(os.path.join(scan.root, files[i]))
        except Image.UnidentifiedImageError:
            unreadable.append(f"{files[i]}: not a PNG, JPEG or WebP image")
            continue
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            unreadable.append(f"{files[i]}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        sizes.append((width, height))
        modes[mode] = modes.get(mode, 0) + 1
    wh = np.array(sizes, np.int64).reshape(-1, 2)

    def stats(column: np.ndarray) -> tuple[int, int, int]:
        return (int(column.min()), int(np.median(column)), int(column.max())) if len(column) else (0, 0, 0)

    return SizeStats(sampled=len(sizes) + len(unreadable), of=len(files), widths=stats(wh[:, 0]),
                     heights=stats(wh[:, 1]), modes=tuple(sorted(modes.items(), key=lambda m: (-m[1], m[0]))),
                     smaller=int((wh.min(axis=1) < image_size).sum()), unreadable=tuple(unreadable))


def shown_images(scan: FolderScan, image_size: int, resize: str, per_class: int = SHOWN_PER_CLASS,
                 classes: int = SHOWN_CLASSES) -> tuple[Shown, ...]:
    """per_class training images of each of the first `classes` classes, spread over each
    class's files, decoded by the trainer's decoder (an image it refuses: its reason)."""
    out = []
    starts = np.concatenate([[0], np.cumsum(scan.train.counts)])
    for label in range(min(classes, len(scan.classes))):
        for i in starts[label] + _spread(scan.train.counts[label], per_class):
            path = scan.train.files[i]
            try:
                out.append(Shown(label, path, decode_image_file(scan.root / path, image_size, resize)))
            except ImageRefused as e:
                out.append(Shown(label, path, None, str(e)))
    return tuple(out)


# ----------------------------------------------------------------------------- the split

def split_counts(preview: FolderPreview, test_size: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(training images, test images) per class: test/'s, or those carved from train/."""
    if preview.test_counts is not None:
        return preview.train_counts, preview.test_counts
    test = tuple(held_out(n, test_size) for n in preview.train_counts)
    return tuple(n - t for n, t in zip(preview.train_counts, test, strict=True)), test


def train_set_images(preview: FolderPreview, test_size: float) -> int:
    """The run's training set (the validation split is carved from it): train/ less the test share."""
    return sum(split_counts(preview, test_size)[0])


def counts_rows(preview: FolderPreview, test_size: float) -> list[dict]:
    """One row per class for the counts table: class, training images, test images."""
    train, test = split_counts(preview, test_size)
    return [{"class": name, "train": n, "test": t} for name, n, t in zip(preview.classes, train, test, strict=True)]


def split_note(preview: FolderPreview, test_size: float) -> str:
    """Where the test split comes from, in one line."""
    if preview.test_counts is not None:
        return f"test: the folder's test/ ({sum(preview.test_counts):,} images)"
    return (f"test: {test_size * 100:g}% of each class's images carved from train/ "
            f"({sum(split_counts(preview, test_size)[1]):,} images, chosen by the split seed); the folder has no test/")


# ----------------------------------------------------------------------------- the words

def _names(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def sizes_text(sizes: SizeStats) -> str:
    """The sampled sizes and modes in one line."""
    def span(lo: int, mid: int, hi: int) -> str:
        return f"{lo}" if lo == hi else f"{lo}-{hi} (median {mid})"

    sample = (f"all {sizes.of:,} images" if sizes.sampled == sizes.of
              else f"a sample of {sizes.sampled:,} of the {sizes.of:,} images")
    modes = ", ".join(f"{mode} {n:,}" for mode, n in sizes.modes)
    return f"width {span(*sizes.widths)} px, height {span(*sizes.heights)} px; modes {modes or '-'} ({sample})"


def folder_warnings(preview: FolderPreview, test_size: float) -> list[str]:
    """What the user should know before training on the folder, one line each (nothing for
    a refused folder: its error says it)."""
    if preview.error is not None:
        return []
    out = list(preview.problems)
    if preview.ignored:
        out.append(f"{preview.ignored:,} file{'s' if preview.ignored > 1 else ''} ignored: not named as a PNG, JPEG "
                   "or WebP image, or hidden")
    train, test = split_counts(preview, test_size)
    few = [f"{c} ({n})" for c, n in zip(preview.classes, train, strict=True) if n < FEW_IMAGES]
    if few:
        out.append(f"{len(few)} class{'es' if len(few) > 1 else ''} with fewer than {FEW_IMAGES} training images: "
                   f"{_names(few)}")
    if preview.test_counts is None:
        untested = [c for c, t in zip(preview.classes, test, strict=True) if t == 0]
        if untested:
            out.append(f"no test image can be held out of a class with one image: {_names(untested)}")
    if min(train) and max(train) / min(train) > IMBALANCE:
        big, small = int(np.argmax(train)), int(np.argmin(train))
        out.append(f"strong class imbalance: {preview.classes[big]} has {train[big]:,} training images, "
                   f"{preview.classes[small]} {train[small]:,} ({train[big] / train[small]:.0f}x)")
    out += _image_warnings(preview)
    return out


def _image_warnings(preview: FolderPreview) -> list[str]:
    """From the sampled headers and the shown images: upscaled images, unreadable files."""
    out = []
    sizes = preview.sizes
    if sizes is not None and sizes.smaller:
        some = "All" if sizes.smaller == sizes.sampled else f"{sizes.smaller:,} of"
        out.append(f"{some} the {sizes.sampled:,} sampled images have a side under "
                   f"{preview.image_size} px: they are upscaled (blurred) to {preview.image_size}x{preview.image_size}")
    bad = list(sizes.unreadable if sizes is not None else ())
    bad += [f"{s.problem}" for s in preview.shown if s.image is None and not any(s.path in b for b in bad)]
    if bad:
        out.append(f"{len(bad)} sampled file{'s' if len(bad) > 1 else ''} could not be read ({_names(bad, 3)}): "
                   "training refuses the folder unless bad images are skipped")
    return out
