"""A run's feature space from the command line: ``python -m resnet_core.embed RUN_DIR``.

Computes (or reuses, see :mod:`resnet_core.embeddings`) the penultimate features of a
split's images (``--split val|test|train``, default test) and of the training images under
a checkpoint (``--checkpoint best|last``), then reports the k-NN accuracy of the split's
features against the training features (``--k`` neighbours, default 10, cosine, majority
vote; for ``--split train`` each image's own entry is left out) beside the checkpoint's own
accuracy on the same images. ``--neighbors INDEX`` (a data set index of the split's images)
lists that image's k nearest training images: index, label, cosine similarity. It also
counts the test images with a near-duplicate in the training set, in pixels, whatever the
model (resnet_core.duplicates; kept in the runs folder's .cache/ for the data folder).

Progress goes to stderr while features are computed. ``--json`` prints one JSON object:
``split``, ``checkpoint_file``, ``images``, ``dims``, ``k``, ``knn_acc`` and ``model_acc``
(fractions), ``features_file``, ``duplicates`` (test images with a near-duplicate in the
training set) and, with ``--neighbors``, ``neighbors`` (a list of
``{"index", "label", "class", "similarity"}``). Bad input (not a run, no checkpoint, no such
split or index, no data): one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import runs
from .cifar import IMAGE_FOLDER, DataError, dataset_title
from .folder_dataset import folder_settings
from .duplicates_cache import cached_duplicates
from .embeddings import SPLITS, EmbeddingError, Features, compute_features, features_file, run_data_dir
from .neighbours import split_knn_accuracy, training_neighbours
from .predict import Parser

PROG = "python -m resnet_core.embed"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Penultimate features of a run's images: k-NN accuracy and nearest neighbours.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holding config.json and best.pt or last.pt)")
    p.add_argument("--split", choices=SPLITS, default="test", help="the images to describe (default: test)")
    p.add_argument("--checkpoint", choices=tuple(runs.CHECKPOINTS), default="best",
                   help="best.pt (default; last.pt where the run has none) or last.pt")
    p.add_argument("--k", type=int, default=10, help="neighbours that vote, and that --neighbors lists (default 10)")
    p.add_argument("--neighbors", type=int, metavar="INDEX", help="list the nearest training images of this image")
    p.add_argument("--data-dir", help="data folder (holding the run's dataset) where the run's own no longer holds it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def stderr_progress(what: str):
    """A progress callback that rewrites one stderr line: '<what>: done/total images'."""
    def report(done: int, total: int) -> None:
        print(f"\r{what}: {done:,}/{total:,} images", end="\n" if done >= total else "", file=sys.stderr)
    return report


def duplicate_count(info: runs.RunInfo | None, run_dir: str, data_dir: str | None) -> int:
    """Test images of the run's data folder with a near-duplicate among its training images."""
    folder = run_data_dir(info, data_dir) if info else data_dir
    dataset = info.dataset if info else "cifar10"
    try:
        settings = folder_settings(info.config) if info and dataset == IMAGE_FOLDER else None
        return len(cached_duplicates(dataset, folder, Path(run_dir).resolve().parent,
                                     stderr_progress("near-duplicates"), settings=settings))
    except (DataError, OSError) as e:
        raise EmbeddingError(f"no {dataset_title(dataset)} to look for near-duplicates in: "
                             f"{' '.join(str(e).split())}") from None


def neighbour_list(split: Features, train: Features, index: int, k: int, classes: list[str]) -> list[dict]:
    """The k nearest training images of the split's image with data set index `index`."""
    found = np.flatnonzero(split.indices == index)
    if not len(found):
        raise EmbeddingError(f"no image with index {index} in the {split.split} split "
                             f"({len(split.indices):,} images)")
    rows, sims = training_neighbours(split, train, int(found[0]), k)
    out = []
    for r, s in zip(rows, sims, strict=True):
        label = int(train.labels[r])
        out.append({"index": int(train.indices[r]), "label": label,
                    "class": classes[label] if label < len(classes) else str(label), "similarity": float(s)})
    return out


def summary(args, info: runs.RunInfo | None) -> dict:
    feats = compute_features(args.run_dir, args.split, args.checkpoint, stderr_progress(f"{args.split} features"),
                             args.data_dir)
    train = feats if args.split == "train" else compute_features(
        args.run_dir, "train", args.checkpoint, stderr_progress("train features"), args.data_dir)
    if not len(feats.labels):
        raise EmbeddingError(f"the {args.split} split holds no images")
    result = {"split": args.split, "checkpoint_file": feats.checkpoint_file, "images": len(feats.labels),
              "dims": feats.dims, "k": args.k,
              "knn_acc": split_knn_accuracy(feats, train, args.k),
              "model_acc": feats.accuracy,
              "features_file": str(features_file(args.run_dir, args.split, args.checkpoint))}
    if args.neighbors is not None:  # before the duplicate search (up to half a minute): a bad index fails at once
        result["neighbors"] = neighbour_list(feats, train, args.neighbors, args.k, info.classes if info else [])
    result["duplicates"] = duplicate_count(info, args.run_dir, args.data_dir)
    return result


def text_lines(result: dict) -> list[str]:
    lines = [f"{result['split']} split, {result['checkpoint_file']}: {result['images']:,} images, "
             f"{result['dims']} dims",
             f"k-NN accuracy (k={result['k']}, against the training features): {100 * result['knn_acc']:.2f}%",
             f"model accuracy on the same images: {100 * result['model_acc']:.2f}%",
             f"features: {result['features_file']}",
             f"test images with a near-duplicate in the training set (pixels): {result['duplicates']:,}"]
    for n in result.get("neighbors", []):
        lines.append(f"  training image {n['index']:>6}  {n['class']:<12} similarity {n['similarity']:.4f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.k < 1:
        print(f"{PROG}: --k must be at least 1", file=sys.stderr)
        return 2
    info = runs.read_run(args.run_dir)
    try:
        result = summary(args, info)
    except EmbeddingError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else "\n".join(text_lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
