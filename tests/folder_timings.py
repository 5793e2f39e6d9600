"""Timings behind resnet_core.image_folder's choices, printed (run by hand, never asserted):

    python tests/folder_timings.py [--cifar DIR] [--work DIR] [-n 2000] [--scan 100000]

1. decoding images/s, PIL (resnet_core.images) against torchvision.io, of 32x32 PNGs and of
   256x256 and 1024x1024 JPEG photos to 32: one thread; the folder loader's thread pool with 1 and 2
   workers; a process pool of 2;
2. with --cifar (a folder holding cifar-10-batches-py/; the real data is read only here,
   never in tests): CIFAR-10 exported to PNGs, decoded into the cache, loaded again from it;
3. scanning --scan tiny files: seconds and peak memory.

Images for 1 are CIFAR's where --cifar is given (the photos: upscaled bicubically, JPEG
quality 90), else synthetic. The load average is printed: on a shared machine it says how
far the numbers can be trusted.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar_folder import export_cifar_folder  # noqa: E402
from conftest import synthetic_images  # noqa: E402
from resnet_core.cifar import load_cifar  # noqa: E402
from resnet_core.folder_scan import scan_image_folder  # noqa: E402
from resnet_core.image_folder import cache_path, decode_files, load_image_folder  # noqa: E402
from resnet_core.images import decode_image_file  # noqa: E402


def sample_images(cifar: Path | None, n: int) -> np.ndarray:
    if cifar is not None:
        return load_cifar("cifar10", cifar).train_images[:n]
    rng = np.random.default_rng(0)
    return synthetic_images(np.arange(n) % 10, rng).reshape(n, 3, 32, 32)


def write_samples(images: np.ndarray, folder: Path, side: int) -> list[Path]:
    """The images as PNGs (side 32) or as side x side JPEG "photos"."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        im = Image.fromarray(image.transpose(1, 2, 0))
        path = folder / f"{i:05d}.{'png' if side == 32 else 'jpg'}"
        if side != 32:
            im.resize((side, side), Image.Resampling.BICUBIC).save(path, quality=90)
        else:
            im.save(path)
        paths.append(path)
    return paths


def torchvision_decode(path: Path, size: int = 32):
    import torch
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms.v2 import functional as F

    image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB, apply_exif_orientation=True)
    image = F.resize(image, size, antialias=True)  # shorter side, then the centre square
    return F.center_crop(image, size).to(torch.uint8)


def decode_chunk(paths: list[Path]) -> np.ndarray:
    return np.stack([decode_image_file(p) for p in paths])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} images/s ({seconds:.2f} s)"


def time_decoders(paths: list[Path], what: str, rounds: int = 3) -> None:
    """Each way's best of `rounds`, the ways interleaved so that a busy spell of the shared
    machine slows all of them; CPU/wall: the CPU seconds all the process's threads used a
    wall second (2 when two threads decode at once; a process pool's workers not counted)."""
    root, files, n = paths[0].parent, tuple(p.name for p in paths), len(paths)
    chunks = [paths[i:i + 256] for i in range(0, n, 256)]
    with ProcessPoolExecutor(2) as pool:
        ways = {"PIL (resnet_core.images), one thread": lambda: [decode_image_file(p) for p in paths],
                "torchvision.io, one thread": lambda: [torchvision_decode(p) for p in paths],
                "PIL, decode_files, 1 thread": lambda: decode_files(root, files, 32, "crop", workers=1),
                "PIL, decode_files, 2 threads": lambda: decode_files(root, files, 32, "crop", workers=2),
                "PIL, 2 processes (started)": lambda: list(pool.map(decode_chunk, chunks))}
        torchvision_decode(paths[0])  # imports
        list(pool.map(decode_chunk, chunks[:2]))  # starts the workers
        best = {name: (float("inf"), 0.0) for name in ways}
        for _ in range(rounds):
            for name, way in ways.items():
                wall, cpu = time.perf_counter(), time.process_time()
                way()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[name] = min(best[name], (wall, cpu / wall))
    for name, (wall, ratio) in best.items():
        print(f"  {what}: {name}: {rate(n, wall)}, CPU/wall {ratio:.2f}")


def time_cifar_cache(cifar: Path, work: Path) -> None:
    folder, cache = work / "cifar_png", work / "cache"
    if not (folder / "test").is_dir():
        t = time.perf_counter()
        export_cifar_folder(cifar, folder)
        print(f"  exported CIFAR-10 to PNGs in {time.perf_counter() - t:.1f} s")
    shutil.rmtree(cache, ignore_errors=True)
    for attempt in ("decoded", "from the cache"):
        t = time.perf_counter()
        data = load_image_folder(folder, cache_dir=cache)
        seconds = time.perf_counter() - t
        n = len(data.train_images) + len(data.test_images)
        print(f"  60,000 CIFAR-10 PNGs {attempt} (from_cache={data.from_cache}): {seconds:.2f} s, {rate(n, seconds)}")
    size = cache_path(cache, folder.resolve(), 32, "crop").stat().st_size
    print(f"  cache file: {size / 1e6:.1f} MB")
    t = time.perf_counter()
    scan_image_folder(folder)
    print(f"  of which scanning the 60,000 files: {time.perf_counter() - t:.2f} s")


def time_scan(work: Path, n: int) -> None:
    folder = work / f"scan_{n}"
    if not folder.is_dir():
        png = io.BytesIO()
        Image.new("RGB", (8, 8)).save(png, "PNG")
        for i in range(n):
            path = folder / "train" / f"class{i % 10}" / f"{i:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png.getvalue())
    t = time.perf_counter()
    scan = scan_image_folder(folder)
    seconds = time.perf_counter() - t
    tracemalloc.start()
    scan_image_folder(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  scanned {len(scan.train):,} files in {seconds:.2f} s; peak Python memory {peak / 1e6:.1f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", type=Path, help="a folder holding cifar-10-batches-py/")
    p.add_argument("--work", type=Path, default=Path("/tmp/folder_timings"))
    p.add_argument("-n", type=int, default=2000, help="images per decoding timing")
    p.add_argument("--scan", type=int, default=100_000, help="files in the scanning timing (0: none)")
    args = p.parse_args()
    print(f"CPUs {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    images = sample_images(args.cifar, args.n)
    for side, n in ((32, args.n), (256, args.n), (1024, args.n // 8)):
        paths = write_samples(images[:n], args.work / f"samples_{side}", side)
        time_decoders(paths, f"{side}x{side} {'PNG' if side == 32 else 'JPEG'}")
    if args.cifar is not None:
        time_cifar_cache(args.cifar, args.work)
    if args.scan:
        time_scan(args.work, args.scan)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
