"""Classify your own images with a trained run: ``python -m resnet_core.predict RUN_DIR IMAGE...``.

Each image (PNG, JPEG or WebP; limits and the exact conversion to the run's image size, by its
resize rule, in :mod:`resnet_core.images`) is normalised with the run's own statistics and classified by
its best.pt (``--checkpoint last`` for last.pt; best falls back to last.pt where there is
none, saying so on stderr). Output, one line per image: ``FILE: class 81.2% · class 9.1%
...`` with ``--top`` classes (default 5), or with ``--json`` a JSON list of
``{"file": FILE, "top": [[class, probability], ...]}``, probabilities as fractions.

Every image is checked before the model is loaded: a missing, empty, damaged, oversized or
non-image file, a folder that is not a run, or a missing or corrupt checkpoint is refused
with one line on stderr and exit code 2, and nothing is printed on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np
import torch

from .images import ImageRefused, model_input, read_image_file
from . import runs
from .run_model import ModelLoadError, RunModel, load_run_model, run_image_format

PROG = "python -m resnet_core.predict"


def top_classes(probabilities: np.ndarray, classes: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """Each row's k most probable classes as (name, probability), best first (ties: lower class first)."""
    probs = np.asarray(probabilities)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(classes[int(c)], float(row[c])) for c in idx] for idx, row in zip(order, probs, strict=True)]


def predict(run_model: RunModel, images: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """The top-k classes of uint8 images (N, 3, S, S), S the run's image_size."""
    probs = run_model.probabilities(torch.from_numpy(np.ascontiguousarray(images))).numpy()
    return top_classes(probs, run_model.classes, k)


def text_line(name: str, top: list[tuple[str, float]]) -> str:
    return f"{name}: " + " · ".join(f"{c} {100 * p:.1f}%" for c, p in top)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Classify PNG, JPEG or WebP images with a trained run's model.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holding config.json and best.pt or last.pt)")
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="PNG, JPEG or WebP files (at most 20 MB, 10,000 px a side)")
    p.add_argument("--checkpoint", choices=tuple(runs.CHECKPOINTS), default="best",
                   help="best.pt (default; last.pt where the run has none) or last.pt")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {file, top: [[class, probability]]}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.top < 1:
        print(f"{PROG}: --top must be at least 1", file=sys.stderr)
        return 2
    try:
        size, resize = run_image_format(args.run_dir)
        images = np.stack([model_input(read_image_file(path), path, size, resize) for path in args.images])
        run_model = load_run_model(args.run_dir, args.checkpoint)
    except (ImageRefused, ModelLoadError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if run_model.note:
        print(run_model.note, file=sys.stderr)
    tops = predict(run_model, images, args.top)
    if args.json:
        print(json.dumps([{"file": path, "top": [[c, p] for c, p in top]}
                          for path, top in zip(args.images, tops, strict=True)]))
    else:
        for path, top in zip(args.images, tops, strict=True):
            print(text_line(path, top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
