"""Runs side by side (no Streamlit here): the runs of a sweep, which epoch an evaluation
choice means for a run, whether two runs' per-image predictions can be compared at all,
and what changed from run A to run B: the difference of their confusion matrices, the
images behind one cell's change, and the images one run gets right and the other wrong.

Two runs are compared image by image: their records (``predictions/{split}_epoch_NNN.npz``,
see :mod:`resnet_core.runs.folder_format`) are paired by image index, which means something only when
both evaluated exactly the same images of the same set with the same classes.
:func:`comparability_problem` says why two evaluations cannot be paired; :func:`pair`
refuses them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import runs
from ..cifar import dataset_title
from ..folder_dataset import files_moved
from ..metrics import confusion_matrix
from ..model_names import PaperResult, shortcut_label
from ..runs import PLAIN
from ..results import ResultGroup, field_text, group_record
from ..runs.values import as_count, as_int, is_int
from ..evaluation_labels import evaluation_labels
from .cell_selection import Cell
from .gallery_records import confidences
from .run_images import SET_NAMES, image_source, source_paths

FINAL = "final"  # the last recorded evaluation of the split
BEST = "best"  # the epoch the run's validation accuracy was best


def sweeps(infos: Iterable[runs.RunInfo]) -> dict[str, list[str]]:
    """Sweep name -> ids of its runs (in the order given), for runs whose config records
    one (``config.sweep``; "" for none), sorted by name."""
    found: dict[str, list[str]] = {}
    for info in infos:
        name = info.train_config.get("sweep")
        if isinstance(name, str) and name:
            found.setdefault(name, []).append(info.run_id)
    return dict(sorted(found.items()))


def best_epoch(info: runs.RunInfo) -> int | None:
    """The epoch with the best validation accuracy (status.json's ``best_epoch``); None for
    a run without a validation split or before its first epoch."""
    epoch = as_count(info.status.get("best_epoch"))
    return epoch if epoch and evaluation_labels(info.config).has_validation else None


@dataclass(frozen=True)
class EpochPick:
    """The epoch an evaluation choice means for one run, what its numbers are, or why there is none."""

    epoch: int | None
    text: str  # "final test (epoch 10)", "validation at the best validation epoch 7", "test at epoch 4"
    problem: str | None = None  # a sentence's predicate: "has no validation split, ..."


def pick_epoch(recorded: Sequence[int], choice: str, split_name: str, best: int | None) -> EpochPick:
    """The epoch of a run's per-image records of a split for choice FINAL (the last one
    recorded), BEST (best: the run's best validation epoch) or an epoch number ("7")."""
    recorded = sorted(recorded)
    if not recorded:
        return EpochPick(None, split_name, f"recorded no per-image {split_name} predictions")
    if choice == FINAL:
        return EpochPick(recorded[-1], f"final {split_name} (epoch {recorded[-1]})")
    if choice == BEST:
        if best is None:
            return EpochPick(None, split_name, "has no best validation epoch (no validation split, or no epoch yet)")
        text = f"{split_name} at the best validation epoch {best}"
        if best not in recorded:
            return EpochPick(None, text, f"recorded no {split_name} predictions at its best validation epoch {best} "
                                         f"(only at epoch{'s' if len(recorded) > 1 else ''} "
                                         f"{', '.join(map(str, recorded))})")
        return EpochPick(best, text)
    epoch = int(choice)
    text = f"{split_name} at epoch {epoch}"
    missing = None if epoch in recorded else f"recorded no {split_name} predictions at epoch {epoch}"
    return EpochPick(epoch, text, missing)


@dataclass(frozen=True, eq=False)
class Evaluated:
    """One run's per-image records of a split at an epoch, and what they are."""

    name: str  # how the page names the run here: "A", "B"
    split: str  # "val" or "test"
    source: str | None  # the image set the indices point into: "train" or "test"
    split_seed: int | None  # which training images formed a validation split
    classes: tuple[str, ...]
    preds: Mapping[str, np.ndarray]
    dataset: str = "cifar10"  # the dataset the run trained on (RunInfo.dataset)
    files: list[str] | None = None  # an image folder run's files of the set its indices point into


def evaluated(name: str, info: runs.RunInfo, split: str, preds: Mapping[str, np.ndarray]) -> Evaluated:
    seed = info.train_config.get("split_seed", 0)  # older runs predate the option: their splits used seed 0
    source = image_source(info.config, split)
    return Evaluated(name, split, source, as_count(seed), tuple(info.classes), preds, info.dataset,
                     source_paths(info.path, source))


def _images_evaluated(e: Evaluated) -> str:
    """'validates on 5,000 held-out training images with split seed 0', 'is tested on 200 test images'."""
    n = len(e.preds["indices"])
    if e.split == "val" and e.source == "train":
        seed = f" with split seed {e.split_seed}" if e.split_seed is not None else ""
        return f"validates on {n:,} held-out training images{seed}"
    if e.split == "val":
        return f"validates on {n:,} {SET_NAMES.get(e.source or '', 'unknown')} images"
    return f"is tested on {n:,} {SET_NAMES.get(e.source or '', 'unknown')} images"


def other_datasets(a_name: str, a_dataset: str, b_name: str, b_dataset: str, what: str) -> str:
    """Why two runs' records of `what` cannot be paired image by image: they index other datasets."""
    return (f"{a_name} trained on {dataset_title(a_dataset)}, {b_name} on {dataset_title(b_dataset)}: "
            f"their {what} cannot be compared.")


def other_files(a_name: str, a_files: list[str] | None, b_name: str, b_files: list[str] | None,
                what: str) -> str | None:
    """Why two image folder runs' records of `what` cannot be paired by index: their sets hold
    other files at the same positions (another folder, another carved test split); None when
    they are the same files, or neither run recorded any (CIFAR's)."""
    if a_files is None and b_files is None or a_files == b_files:
        return None
    if a_files is None or b_files is None:
        return f"only one of {a_name} and {b_name} recorded its image files: their {what} cannot be compared."
    moved = files_moved(a_files, b_files)
    return (f"{a_name} and {b_name} trained on different image files ({moved:,} of {max(len(a_files), len(b_files)):,} "
            f"differ at the same index: another folder, or another split of it): their {what} cannot be compared.")


def comparability_problem(a: Evaluated, b: Evaluated) -> str | None:
    """Why A's and B's records cannot be paired image by image (None when they can): other
    datasets, other class lists, other images (another validation split, another image
    set), or other true labels for the same images (another copy of the data)."""
    if a.dataset != b.dataset:
        return other_datasets(a.name, a.dataset, b.name, b.dataset, "predictions")
    files = other_files(a.name, a.files, b.name, b.files, "predictions")
    if files:
        return files
    if a.classes != b.classes:
        if len(a.classes) != len(b.classes):
            detail = f"{a.name} has {len(a.classes)} classes, {b.name} has {len(b.classes)}"
        else:
            i = next(i for i, (x, y) in enumerate(zip(a.classes, b.classes, strict=True)) if x != y)
            detail = f"class {i} is {a.classes[i]!r} in {a.name}, {b.classes[i]!r} in {b.name}"
        return f"{a.name} and {b.name} classify into different class lists ({detail}): their predictions cannot " \
               f"be compared."
    ia, ib = np.asarray(a.preds["indices"]), np.asarray(b.preds["indices"])
    if not len(ia) or not len(ib):
        return f"{a.name if not len(ia) else b.name} recorded no predictions for this split and epoch."
    if a.source != b.source or len(ia) != len(ib) or not np.array_equal(np.sort(ia), np.sort(ib)):
        what = {"val": "validation splits", "test": "test sets"}.get(a.split, "evaluated images") \
            if a.split == b.split else "evaluated images"
        common = len(np.intersect1d(ia, ib)) if a.source == b.source else 0
        hint = "; compare on the test set instead" if a.split == b.split == "val" else ""
        return (f"{a.name} {_images_evaluated(a)}, {b.name} {_images_evaluated(b)}: their {what} differ "
                f"({common:,} images in common){hint}.")
    paired = pair(a.preds, b.preds)
    other = int((np.asarray(a.preds["labels"])[paired.a_pos] != np.asarray(b.preds["labels"])[paired.b_pos]).sum())
    if other:
        return (f"{a.name} and {b.name} record different true labels for {other:,} of the same {len(ia):,} images: "
                f"they read different copies of the data, so their predictions cannot be compared.")
    return None


@dataclass(frozen=True, eq=False)
class Paired:
    """A's and B's records of the same images, one entry per image, ordered by image index."""

    index: np.ndarray  # the image's index in its set
    labels: np.ndarray  # its true class (A's record)
    a_pos: np.ndarray  # the position of its record in A's arrays
    b_pos: np.ndarray  # ... and in B's
    a_pred: np.ndarray
    b_pred: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def pair(a_preds: Mapping[str, np.ndarray], b_preds: Mapping[str, np.ndarray]) -> Paired:
    """Pair A's and B's records by image index; ValueError when they hold other images
    (check :func:`comparability_problem` first for the message to show)."""
    ia, ib = np.asarray(a_preds["indices"]), np.asarray(b_preds["indices"])
    a_pos, b_pos = np.argsort(ia, kind="stable"), np.argsort(ib, kind="stable")
    if len(ia) != len(ib) or not np.array_equal(ia[a_pos], ib[b_pos]):
        raise ValueError("the two runs evaluated different images")
    return Paired(index=ia[a_pos], labels=np.asarray(a_preds["labels"])[a_pos], a_pos=a_pos, b_pos=b_pos,
                  a_pred=np.asarray(a_preds["preds"])[a_pos], b_pred=np.asarray(b_preds["preds"])[b_pos])


@dataclass(frozen=True, eq=False)
class Difference:
    a: np.ndarray  # A's confusion matrix (rows = true, columns = predicted)
    b: np.ndarray  # B's

    @property
    def diff(self) -> np.ndarray:
        """B - A per cell: positive where B puts more images than A."""
        return self.b - self.a


def difference(paired: Paired, n_classes: int) -> Difference:
    return Difference(confusion_matrix(paired.labels, paired.a_pred, n_classes),
                      confusion_matrix(paired.labels, paired.b_pred, n_classes))


def cell_changes(paired: Paired, cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """The images behind cell (true t, predicted p)'s change from A to B, as positions into
    paired: those that entered it (in the cell for B, not for A) and those that left it (in
    it for A, not for B). len(entered) - len(left) is the cell's difference."""
    in_row = paired.labels == cell.true
    entered = np.flatnonzero(in_row & (paired.b_pred == cell.pred) & (paired.a_pred != cell.pred))
    left = np.flatnonzero(in_row & (paired.a_pred == cell.pred) & (paired.b_pred != cell.pred))
    return entered, left


def shared_superclasses(a: runs.RunInfo, b: runs.RunInfo, n_classes: int) -> tuple[list[int], list[str]]:
    """Each class's superclass and the superclasses' names where both runs group their
    n_classes (the same classes) alike, so that a view of both can draw them superclass by
    superclass; else ([], [])."""
    if a.superclass_of != b.superclass_of or a.superclasses != b.superclasses or not a.superclasses:
        return [], []
    return (list(a.superclass_of), list(a.superclasses)) if len(a.superclass_of) == n_classes else ([], [])


def flips(paired: Paired) -> tuple[np.ndarray, np.ndarray]:
    """Positions into paired of the images A gets right and B wrong, and of those B gets
    right and A wrong."""
    a_right, b_right = paired.a_pred == paired.labels, paired.b_pred == paired.labels
    return np.flatnonzero(a_right & ~b_right), np.flatnonzero(b_right & ~a_right)


def flip_counts(paired: Paired, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per true class: how many images A gets right and B wrong, and how many B gets right
    and A wrong."""
    a_only, b_only = flips(paired)
    return (np.bincount(paired.labels[a_only], minlength=n_classes),
            np.bincount(paired.labels[b_only], minlength=n_classes))


def flip_table(a_only: Sequence[int], b_only: Sequence[int], classes: Sequence[str],
               group: Sequence[str] = ()) -> list[dict]:
    """Rows of the per-class flip counts (from :func:`flip_counts`) and a last row "all":
    class (and its superclass, where group names each class's), A right B wrong, B right A
    wrong, and the net change for B (B's gain)."""
    rows = [{"class": str(c), **({"superclass": group[i]} if group else {}), "A right, B wrong": int(a),
             "B right, A wrong": int(b), "net for B": int(b) - int(a)}
            for i, (c, a, b) in enumerate(zip(classes, a_only, b_only, strict=True))]
    total_a, total_b = sum(r["A right, B wrong"] for r in rows), sum(r["B right, A wrong"] for r in rows)
    return rows + [{"class": "all", **({"superclass": None} if group else {}), "A right, B wrong": total_a,
                    "B right, A wrong": total_b, "net for B": total_b - total_a}]


def most_confident_first(paired: Paired, positions: np.ndarray, preds: Mapping[str, np.ndarray],
                         side: str) -> np.ndarray:
    """positions (into paired) sorted by the confidence of run side ("a" or "b"), highest
    first (ties keep their order): for images B now gets wrong, sorted by B's, the mistakes
    it is surest of come first."""
    pos = (paired.a_pos if side == "a" else paired.b_pos)[positions]
    return positions[np.argsort(-confidences(preds)[pos], kind="stable")]


@dataclass(frozen=True)
class DepthPoint:
    depth: int
    error: float  # the final test error (%), mean over the group's completed runs
    std: float | None  # sample std over them (None for one run)
    n: int  # completed runs
    paper: PaperResult | None  # the paper's number for this network, where the config is the paper's recipe


def depth_lines(groups: Sequence[ResultGroup]) -> dict[str, list[DepthPoint]]:
    """Test error against depth: one line per shortcut option ("plain" for networks without
    shortcuts, then "shortcut A", ...), split further by the other fields that differ between
    the groups (e.g. "shortcut A · epochs=30"), each line's points by depth. Groups without
    a depth or a completed run are left out."""
    lines: dict[str, list[DepthPoint]] = {}
    for g in groups:
        mean, std = g.test_error
        if g.depth is None or mean is None:
            continue
        name = "plain" if g.shortcut == PLAIN else f"shortcut {shortcut_label(g.shortcut)}"
        others = [f"{k}={v}" for k, v in g.fields.items() if k not in ("depth", "shortcut")]
        name = " · ".join([name, *others])
        lines.setdefault(name, []).append(DepthPoint(g.depth, mean, std, g.runs, g.paper))
    ordered = sorted(lines.items(), key=lambda kv: (not kv[0].startswith("plain"), kv[0]))
    return {name: sorted(points, key=lambda p: p.depth) for name, points in ordered}


def results_table(groups: Sequence[ResultGroup]) -> pd.DataFrame:
    """Compare's results table: results.group_record of each group, run ids joined, shortcuts
    named as everywhere in the studio (groups must not be empty). A config value no int64
    holds (a seed of 2**64 in config.json) shows as text: Arrow, st.dataframe's transport,
    raises OverflowError on it."""
    table = pd.DataFrame([group_record(g) for g in groups])
    for column in table.columns:
        if table[column].dtype.kind == "O":  # Python objects: where an int beyond int64 can be
            table[column] = table[column].map(_int64_or_text)
    table["run_ids"] = table["run_ids"].map(", ".join)
    if "shortcut" in table:  # "plain" for none, as everywhere in the studio
        table["shortcut"] = table["shortcut"].map(lambda v: field_text("shortcut", v))
    return table


def _int64_or_text(value):
    return repr(value) if is_int(value) and as_int(value, -2 ** 63, 2 ** 63 - 1) is None else value
