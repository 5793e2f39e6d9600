"""Export CIFAR-10's python batches as an image folder, to train on it both ways.

    python tests/cifar_folder.py SRC DST [--jpeg 90]

SRC holds cifar-10-batches-py/; DST gets train/<class>/<index:05d>.png and
test/<class>/<index:05d>.png, index being the image's position in its split (the
training batches one after another), so the folder's order (class by class, index order
within a class) is the pickle's images stably sorted by label: :func:`folder_order`.
With --jpeg Q the images are JPEGs of quality Q (lossy: the decoded pixels differ).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.cifar import load_cifar  # noqa: E402


def folder_order(labels: np.ndarray) -> np.ndarray:
    """The pickle's indices in the exported folder's order: by class, by index within a class."""
    return np.argsort(labels, kind="stable")


def export_split(images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], folder: Path,
                 jpeg_quality: int | None = None) -> None:
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
    suffix = "png" if jpeg_quality is None else "jpg"
    options = {} if jpeg_quality is None else {"quality": jpeg_quality}

    def write(i: int) -> None:
        Image.fromarray(images[i].transpose(1, 2, 0)).save(
            folder / classes[labels[i]] / f"{i:05d}.{suffix}", **options)

    with ThreadPoolExecutor(4) as pool:  # PIL's encoders release the GIL
        list(pool.map(write, range(len(images))))


def export_cifar_folder(src: Path, dst: Path, jpeg_quality: int | None = None) -> Path:
    data = load_cifar("cifar10", src)
    export_split(data.train_images, data.train_labels, data.classes, Path(dst) / "train", jpeg_quality)
    export_split(data.test_images, data.test_labels, data.classes, Path(dst) / "test", jpeg_quality)
    return Path(dst)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="the folder holding cifar-10-batches-py/")
    p.add_argument("dst", type=Path, help="the image folder to write")
    p.add_argument("--jpeg", type=int, metavar="Q", help="write JPEGs of this quality (1-95) instead of PNGs")
    args = p.parse_args(argv)
    export_cifar_folder(args.src, args.dst, args.jpeg)
    print(f"wrote {args.dst}")


if __name__ == "__main__":
    main()
