"""From a clicked confusion-matrix cell to the images in it (no Streamlit here).

A cell (true class t, predicted class p) selects the records of a predictions file
(``predictions/{split}_epoch_NNN.npz``, see :mod:`resnet_core.runs`) with ``labels == t``
and ``preds == p``; they are sorted by confidence (the top-1 probability) or by loss,
paged, and drawn as one HTML grid of inline PNGs shown at a multiple of 32 px with
``image-rendering: pixelated``, so they stay sharp and cost one element, not one per image.

A run records indices into a CIFAR-10 set, not the images. Before drawing them, the
labels the data folder has at those indices are compared with the labels the run
recorded: a re-packed copy in another order, or another dataset, would otherwise show
wrong pictures under the right captions.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..cifar import dataset_present, load_cifar10
from .heatmap import overlay

SORTS = {"confidence": "confidence (top-1 probability)", "loss": "loss"}
SplitImages = str  # "train" or "test": which CIFAR-10 set a split's indices point into
SET_NAMES = {"train": "training", "test": "test"}
RIGHT_COLOUR, WRONG_COLOUR = "#54A24B", "#E45756"


@dataclass(frozen=True)
class Cell:
    true: int
    pred: int

    @property
    def correct(self) -> bool:
        return self.true == self.pred


def image_source(run_config: Mapping[str, Any], split: str) -> SplitImages | None:
    """Which set the indices of a split's predictions point into: "train" or "test".

    val: the training set when the run carved its validation split from it
    (resolved.val_source == "train"), the test set when the test set stood in
    (val_source "test"); test: the test set; train: None (only a confusion matrix is
    recorded for training batches, so there are no images to show).
    """
    if split == "test":
        return "test"
    if split == "val":
        source = (run_config.get("resolved") or {}).get("val_source")
        if source in ("train", "test"):
            return source
        val_size = (run_config.get("config") or {}).get("val_size")
        return "test" if val_size == 0 else "train"
    return None


@dataclass(frozen=True)
class ImageFolder:
    path: Path
    note: str  # which folder this is and, for the dashboard's, why not the run's own


def image_folder(run_config: Mapping[str, Any], dashboard_dir: str | Path) -> ImageFolder:
    """The data folder to take a run's images from: the one the run read
    (resolved.data_dir) while it still holds CIFAR-10, else the dashboard's."""
    recorded = (run_config.get("resolved") or {}).get("data_dir")
    if not isinstance(recorded, str) or not recorded:
        return ImageFolder(Path(dashboard_dir), "the dashboard's data folder (the run did not record its own)")
    if dataset_present(recorded):
        return ImageFolder(Path(recorded), "the run's own data folder")
    return ImageFolder(Path(dashboard_dir),
                       f"the dashboard's data folder: the run's own, {recorded}, holds no CIFAR-10 any more")


@dataclass(frozen=True)
class LabelCheck:
    checked: int  # records compared
    mismatched: int  # records whose index holds another label in the folder, or does not exist there

    @property
    def ok(self) -> bool:
        return self.mismatched == 0

    def problem(self, folder: str | Path, source: SplitImages) -> str | None:
        """What the page says when the folder's images are not the run's; None when they are."""
        if self.ok:
            return None
        return (f"{self.mismatched:,} of {self.checked:,} recorded labels differ from the labels at the same "
                f"indices of the {SET_NAMES[source]} set in {folder}: that folder holds CIFAR-10 in another "
                f"order, or another dataset, so its images would not be the ones this run saw. The cards are "
                f"shown without images.")


def labels_match(source_labels: np.ndarray, preds: Mapping[str, np.ndarray]) -> LabelCheck:
    """Compare every record's label with the folder's label at the record's index."""
    folder_labels = np.asarray(source_labels)
    indices = np.asarray(preds["indices"], dtype=np.int64)
    recorded = np.asarray(preds["labels"])
    inside = (indices >= 0) & (indices < len(folder_labels))
    same = np.zeros(len(indices), dtype=bool)
    same[inside] = folder_labels[indices[inside]] == recorded[inside]
    return LabelCheck(checked=len(indices), mismatched=int(len(indices) - same.sum()))


def selected_point(event: Any) -> Any:
    """The last point of a Plotly selection event (Streamlit's event object or a plain
    dict), or None for an empty selection."""
    if event is None:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if selection is None:
        return None
    points = selection.get("points") if isinstance(selection, Mapping) else getattr(selection, "points", None)
    return points[-1] if points else None


def selected_customdata(event: Any) -> list | None:
    """The customdata of a Plotly selection event's last point as a list (a numpy customdata
    comes back as {"0": a, "1": b}, a scalar one as itself), or None without any."""
    point = selected_point(event)
    custom = point.get("customdata") if isinstance(point, Mapping) else None
    if custom is None:
        return None
    if isinstance(custom, Mapping):
        return [custom.get(str(i)) for i in range(len(custom))]
    return list(custom) if isinstance(custom, (list, tuple)) else [custom]


def selection_from_event(event: Any, classes: Sequence[str] | None = None) -> Cell | None:
    """The cell a Plotly selection event points at, or None for an empty selection.

    Reads the last point of the selection (``selection.points[-1]``): its ``customdata``
    ([true, pred]), falling back to the category labels ``y`` (true) and ``x`` (predicted)
    when customdata is missing.
    Accepts Streamlit's event object or a plain dict.
    """
    point = selected_point(event)
    if point is None:
        return None
    custom = selected_customdata(event)
    if custom is not None and len(custom) >= 2:
        try:
            return Cell(int(custom[0]), int(custom[1]))
        except (TypeError, ValueError):
            pass
    if classes is not None and isinstance(point, Mapping):
        names = [str(c) for c in classes]
        x, y = point.get("x"), point.get("y")
        if x in names and y in names:
            return Cell(names.index(y), names.index(x))
    return None


def confidences(preds: Mapping[str, np.ndarray]) -> np.ndarray:
    """The top-1 probability of each record (the probability of its predicted class)."""
    probs = np.asarray(preds["topk_probs"])
    return probs[:, 0] if probs.ndim == 2 else probs


def cell_positions(preds: Mapping[str, np.ndarray], cell: Cell, sort: str = "confidence",
                   descending: bool = True) -> np.ndarray:
    """Positions (into the prediction arrays) of the records in a cell, sorted.

    descending=True puts the most confident (or highest-loss) first: for a misclassified
    cell, the mistakes the model was surest about.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; valid: {', '.join(SORTS)}")
    labels = np.asarray(preds["labels"])
    predicted = np.asarray(preds["preds"])
    pos = np.flatnonzero((labels == cell.true) & (predicted == cell.pred))
    key = confidences(preds)[pos] if sort == "confidence" else np.asarray(preds["loss"])[pos]
    # Stable order: ties keep the records' own order, whatever the direction.
    order = np.argsort(-key if descending else key, kind="stable")
    return pos[order]


def loss_positions(preds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Positions of all records, the highest loss first (ties: the records' own order)."""
    return np.argsort(-np.asarray(preds["loss"], dtype=np.float64), kind="stable")


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, clamped into 1..count
    count: int  # number of pages (at least 1)
    start: int
    stop: int

    @property
    def label(self) -> str:
        return f"page {self.number} of {self.count}"


def paginate(total: int, page: int, per_page: int) -> Page:
    """The slice of page `page` (1-based, clamped) of `total` records."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    count = max(1, math.ceil(total / per_page))
    number = min(max(1, int(page)), count)
    start = (number - 1) * per_page
    return Page(number, count, start, min(total, start + per_page))


@dataclass(frozen=True)
class GalleryRecord:
    position: int  # into the prediction arrays
    index: int  # into the source image set
    true: int
    pred: int
    confidence: float
    loss: float
    top: tuple[tuple[int, float], ...]  # (class, probability), best first


def records(preds: Mapping[str, np.ndarray], positions: Sequence[int], top: int = 3) -> list[GalleryRecord]:
    conf = confidences(preds)
    topk_classes = np.asarray(preds["topk_classes"])
    topk_probs = np.asarray(preds["topk_probs"])
    out = []
    for pos in positions:
        pos = int(pos)
        k = min(top, topk_classes.shape[1]) if topk_classes.ndim == 2 else 0
        out.append(GalleryRecord(
            position=pos, index=int(preds["indices"][pos]), true=int(preds["labels"][pos]),
            pred=int(preds["preds"][pos]), confidence=float(conf[pos]), loss=float(preds["loss"][pos]),
            top=tuple((int(topk_classes[pos, j]), float(topk_probs[pos, j])) for j in range(k)),
        ))
    return out


def png_data_uri(image: np.ndarray) -> str:
    """A data: URI of one image, (3, H, W) or (H, W, 3) uint8, as a lossless PNG."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)
    elif image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] == 3:
        image = image.transpose(1, 2, 0)  # ambiguous 3x?x3: CIFAR arrays are channels-first
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.astype(np.uint8))).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_tag(images: np.ndarray | None, index: int, size: int, heatmap: np.ndarray | None = None,
               heatmap_title: str = "") -> str:
    """The record's image as an inline PNG, pixelated at size px, with heatmap (H, W in [0, 1])
    laid over it when given; "" without images."""
    if images is None or not 0 <= index < len(images):
        return ""
    picture, extra = images[index], ""
    if heatmap is not None:
        picture = overlay(picture, heatmap)
        extra = f' class="rs-heatmap" title="{html.escape(heatmap_title)}"'
    return (f'<img src="{png_data_uri(picture)}" width="{size}" height="{size}"{extra} '
            f'alt="image {index}" style="width:{size}px;height:{size}px;image-rendering:pixelated;'
            f'display:block;margin:0 auto 4px auto;border-radius:2px">')


_CARD_STYLE = ("border:1px solid rgba(128,128,128,0.35);border-radius:6px;padding:6px;"
               "font-size:11.5px;line-height:1.35;overflow:hidden")


def _prediction(label: str, r: GalleryRecord, classes: Sequence[str]) -> str:
    colour = WRONG_COLOUR if r.true != r.pred else RIGHT_COLOUR
    return (f'<div>{label} <b style="color:{colour}">{html.escape(classes[r.pred])}</b> '
            f'{100 * r.confidence:.0f}%</div>')


def _grid(cards: Sequence[str], size: int, attrs: str) -> str:
    return (f'<div class="rs-gallery"{attrs} data-shown="{len(cards)}" style="display:grid;'
            f'grid-template-columns:repeat(auto-fill,minmax({size + 14}px,1fr));gap:8px">'
            + "".join(cards) + "</div>")


def history_strip(right: Sequence[bool], epochs: Sequence[int], width: int) -> str:
    """A strip of right (green) and wrong (red) per epoch, width px wide and 8 px high: one
    flex row with one span per run of equal epochs (a 200-epoch strip is a few dozen spans).
    Spans, not SVG: st.html's sanitiser removes <svg> (seen in Chromium: the strip was empty)."""
    right = np.asarray(right, dtype=bool)
    n = len(right)
    if n == 0:
        return ""
    change = np.flatnonzero(right[1:] != right[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [n]))
    spans = "".join(f'<span style="flex:{b - a};background:{RIGHT_COLOUR if right[a] else WRONG_COLOUR}"></span>'
                    for a, b in zip(starts, stops, strict=True))
    wrong_at = [int(epochs[i]) for i in np.flatnonzero(~right)]
    title = (f"epochs {int(epochs[0])}-{int(epochs[-1])}: right at {int(right.sum())}, wrong at "
             + (", ".join(map(str, wrong_at[:40])) + (" …" if len(wrong_at) > 40 else "") if wrong_at else "none"))
    return (f'<div class="rs-strip" data-right="{"".join("1" if x else "0" for x in right)}" '
            f'title="{html.escape(title)}" style="display:flex;width:{width}px;height:8px;margin:3px auto 0 auto;'
            f'border-radius:2px;overflow:hidden">{spans}</div>')


def gallery_html(items: Sequence[GalleryRecord], images: np.ndarray | None, classes: Sequence[str],
                 size: int = 96, cell: Cell | None = None, total: int | None = None,
                 strips: Mapping[int, Sequence[bool]] | None = None, strip_epochs: Sequence[int] = (),
                 notes: Mapping[int, str] | None = None, heatmaps: Mapping[int, np.ndarray] | None = None,
                 heatmap_title: str = "") -> str:
    """One CSS grid of cards: the image (pixelated, size px), index, true and predicted class,
    confidence, loss and the top predictions. images[record.index] must be the record's
    image (N, 3, 32, 32); None draws the cards without images. Optional, by image index:
    strips (right or wrong at each of strip_epochs, see history_strip), notes (one line of
    plain text) and heatmaps (a map (32, 32) in [0, 1], e.g. its Grad-CAM, drawn over its
    image by :func:`resnet_core.dashboard.heatmap.overlay`; heatmap_title the images' tooltip)."""
    esc = html.escape
    cards = []
    for r in items:
        top = " · ".join(f"{esc(classes[c])} {100 * p:.0f}%" for c, p in r.top)
        extra = ""
        if notes and r.index in notes:
            extra += f'<div class="rs-note" style="font-weight:600">{esc(notes[r.index])}</div>'
        if strips and r.index in strips:
            extra += history_strip(strips[r.index], strip_epochs, size)
        cards.append(
            f'<div class="rs-card" data-index="{r.index}" data-true="{r.true}" data-pred="{r.pred}" '
            f'style="{_CARD_STYLE}">'
            f"{_image_tag(images, r.index, size, (heatmaps or {}).get(r.index), heatmap_title)}"
            f'<div style="opacity:0.7">#{r.index}</div>'
            f'<div>true <b>{esc(classes[r.true])}</b></div>'
            f"{_prediction('pred', r, classes)}"
            f'<div style="opacity:0.7">loss {r.loss:.2f}</div>'
            f'<div style="opacity:0.7;font-size:10.5px" title="top-3 predictions">{top}</div>'
            f"{extra}</div>"
        )
    attrs = ""
    if cell is not None:
        attrs = f' data-true="{cell.true}" data-pred="{cell.pred}"'
    if total is not None:
        attrs += f' data-total="{total}"'
    return _grid(cards, size, attrs)


def compared_gallery_html(pairs: Sequence[tuple[GalleryRecord, GalleryRecord]], images: np.ndarray | None,
                          classes: Sequence[str], names: tuple[str, str] = ("A", "B"), size: int = 96,
                          attrs: Mapping[str, Any] | None = None) -> str:
    """Cards of images two runs both evaluated: each (A's record, B's record) of one image
    shows the image, its index and true class, and each run's prediction and confidence.
    attrs become data- attributes of the grid (e.g. {"kind": "entered", "total": 12})."""
    esc = html.escape
    cards = []
    for a, b in pairs:
        if a.index != b.index:
            raise ValueError(f"a card pairs image {a.index} with image {b.index}")
        cards.append(
            f'<div class="rs-card" data-index="{a.index}" data-true="{a.true}" data-a-pred="{a.pred}" '
            f'data-b-pred="{b.pred}" style="{_CARD_STYLE}">'
            f"{_image_tag(images, a.index, size)}"
            f'<div style="opacity:0.7">#{a.index}</div>'
            f'<div>true <b>{esc(classes[a.true])}</b></div>'
            f"{_prediction(esc(names[0]), a, classes)}{_prediction(esc(names[1]), b, classes)}"
            f"</div>"
        )
    extra = "".join(f' data-{esc(str(k))}="{esc(str(v))}"' for k, v in (attrs or {}).items())
    return _grid(cards, size, extra)


class ImageStore:
    """The CIFAR-10 images of a data folder, loaded once in a background thread.

    start() returns at once, so a page can begin loading while the user looks at it;
    get() waits for the load (or raises what it raised).
    """

    def __init__(self, data_dir: str | Path, loader=None):
        self.data_dir = Path(data_dir)
        self._loader = loader
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._data = None
        self._error: BaseException | None = None

    def _load(self) -> None:
        try:
            if self._loader is None:
                self._data = load_cifar10(self.data_dir)
            else:
                self._data = self._loader(self.data_dir)
        except BaseException as e:  # reported to whoever asks for the images
            self._error = e
        finally:
            self._done.set()

    def start(self) -> "ImageStore":
        with self._lock:
            failed = self._done.is_set() and self._error is not None
            if self._thread is None or failed:  # a failed load (no data yet) is tried again
                self._done.clear()
                self._error = None
                self._thread = threading.Thread(target=self._load, name="cifar-image-store", daemon=True)
                self._thread.start()
        return self

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, timeout: float | None = None):
        """The loaded dataset; raises what the load raised (call start() to try again)."""
        if self._thread is None:
            self.start()
        if not self._done.wait(timeout):
            raise TimeoutError(f"CIFAR-10 from {self.data_dir} is still loading")
        if self._error is not None:
            raise self._error
        return self._data

    def images(self, source: SplitImages, timeout: float | None = None) -> np.ndarray:
        data = self.get(timeout)
        return data.train_images if source == "train" else data.test_images

    def labels(self, source: SplitImages, timeout: float | None = None) -> np.ndarray:
        data = self.get(timeout)
        return data.train_labels if source == "train" else data.test_labels
