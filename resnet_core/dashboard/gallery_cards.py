"""A gallery's HTML: one CSS grid of cards, each an inline PNG and its captions.

The images are inline PNGs shown at a fixed size in px with ``image-rendering: pixelated``,
so they stay sharp, and the whole page is one HTML element, not one per image. Which
records a page shows is :mod:`.gallery_records`'s job; where the images come from,
:mod:`.run_images`'s.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from .cell_selection import Cell
from .gallery_records import GalleryRecord
from .heatmap import overlay

RIGHT_COLOUR, WRONG_COLOUR = "#54A24B", "#E45756"


@dataclass(frozen=True)
class CardExtras:
    """What a gallery's cards may add, each by image index (all optional)."""
    strips: Mapping[int, Sequence[bool]] | None = None  # right or wrong at each of strip_epochs, see history_strip
    strip_epochs: Sequence[int] = ()
    notes: Mapping[int, str] | None = None  # one line of plain text
    heatmaps: Mapping[int, np.ndarray] | None = None  # a map (S, S) in [0, 1] of the image's size, e.g. its Grad-CAM
    heatmap_title: str = ""  # the tooltip of the images with a heatmap


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
               heatmap_title: str = "", path: str = "") -> str:
    """The record's image as an inline PNG, pixelated at size px, with heatmap (H, W in [0, 1])
    laid over it when given, and its file (path) as its hover text; "" without images."""
    if images is None or not 0 <= index < len(images):
        return ""
    picture, extra, title = images[index], "", path
    if heatmap is not None:
        picture = overlay(picture, heatmap)
        extra, title = ' class="rs-heatmap"', " · ".join(t for t in (path, heatmap_title) if t)
    if title:
        extra += f' title="{html.escape(title)}"'
    return (f'<img src="{png_data_uri(picture)}" width="{size}" height="{size}"{extra} '
            f'alt="image {index}" style="width:{size}px;height:{size}px;image-rendering:pixelated;'
            f'display:block;margin:0 auto 4px auto;border-radius:2px">')


_CARD_STYLE = ("border:1px solid rgba(128,128,128,0.35);border-radius:6px;padding:6px;"
               "font-size:11.5px;line-height:1.35;overflow:hidden")


def _index_line(index: int, path: str) -> str:
    """The image's index, and its file on hover (and as data-path) where the run records one."""
    file = f' class="rs-path" data-path="{html.escape(path)}" title="{html.escape(path)}"' if path else ""
    return f'<div style="opacity:0.7"{file}>#{index}</div>'


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


def _card(r: GalleryRecord, images: np.ndarray | None, classes: Sequence[str], size: int,
          extras: CardExtras) -> str:
    """One record's card: image, index, true and predicted class, confidence, loss, top
    predictions, and the extras its image index has."""
    esc = html.escape
    top = " · ".join(f"{esc(classes[c])} {100 * p:.0f}%" for c, p in r.top)
    extra = ""
    if extras.notes and r.index in extras.notes:
        extra += f'<div class="rs-note" style="font-weight:600">{esc(extras.notes[r.index])}</div>'
    if extras.strips and r.index in extras.strips:
        extra += history_strip(extras.strips[r.index], extras.strip_epochs, size)
    heatmap = (extras.heatmaps or {}).get(r.index)
    loss = f'<div style="opacity:0.7">loss {r.loss:.2f}</div>' if math.isfinite(r.loss) else ""  # none in the atlas
    return (
        f'<div class="rs-card" data-index="{r.index}" data-true="{r.true}" data-pred="{r.pred}" '
        f'style="{_CARD_STYLE}">'
        f"{_image_tag(images, r.index, size, heatmap, extras.heatmap_title, r.path)}"
        f"{_index_line(r.index, r.path)}"
        f'<div>true <b>{esc(classes[r.true])}</b></div>'
        f"{_prediction('pred', r, classes)}"
        f"{loss}"
        f'<div style="opacity:0.7;font-size:10.5px" title="top-3 predictions">{top}</div>'
        f"{extra}</div>"
    )


def gallery_html(items: Sequence[GalleryRecord], images: np.ndarray | None, classes: Sequence[str],
                 size: int = 96, cell: Cell | None = None, total: int | None = None,
                 extras: CardExtras = CardExtras()) -> str:
    """One CSS grid of cards: the image (pixelated, size px), index, true and predicted class,
    confidence, loss and the top predictions, and the image's file on hover where the record
    has one. images[record.index] must be the record's image (N, 3, S, S); None draws the
    cards without images. extras: history strips, notes and heatmaps by image index (a
    heatmap is drawn over its image by :func:`resnet_core.dashboard.heatmap.overlay`). cell
    and total become data- attributes of the grid."""
    cards = [_card(r, images, classes, size, extras) for r in items]
    attrs = ""
    if cell is not None:
        attrs = f' data-true="{cell.true}" data-pred="{cell.pred}"'
    if total is not None:
        attrs += f' data-total="{total}"'
    return _grid(cards, size, attrs)


@dataclass(frozen=True)
class TrainingCard:
    """One training image as its record of training saw it (see :mod:`.training_gallery`)."""
    index: int  # into the training set
    label: int  # the label trained on
    original_label: int  # the data set's; another than label when planted noise flipped it
    confidence: float  # mean p(label) over the presentations
    variability: float  # their standard deviation
    events: int  # forgetting events
    never_learned: bool
    right: tuple[bool, ...]  # right or wrong at each presentation, see history_strip
    epochs: tuple[int, ...]  # the epochs that presented it
    note: str = ""  # one line of plain text
    path: str = ""  # the image's file, relative to the data folder; "" where the run records none


def _training_card(c: TrainingCard, images: np.ndarray | None, classes: Sequence[str], size: int) -> str:
    esc = html.escape
    flipped = c.label != c.original_label
    label = f'<div>label <b>{esc(classes[c.label])}</b></div>'
    if flipped:
        label += (f'<div class="rs-flipped" style="color:{WRONG_COLOUR};font-weight:600">flipped from '
                  f'{esc(classes[c.original_label])}</div>')
    forgotten = "never learned" if c.never_learned else f"forgotten {c.events}×"
    return (
        f'<div class="rs-card" data-index="{c.index}" data-label="{c.label}" '
        f'data-flipped="{int(flipped)}" style="{_CARD_STYLE}">'
        f"{_image_tag(images, c.index, size, path=c.path)}"
        f"{_index_line(c.index, c.path)}{label}"
        f'<div style="opacity:0.7" title="mean and std of p(label) over the presentations">'
        f"p(label) {c.confidence:.2f} ± {c.variability:.2f}</div>"
        f"<div>{forgotten}</div>"
        + (f'<div class="rs-note" style="font-weight:600">{esc(c.note)}</div>' if c.note else "")
        + history_strip(c.right, c.epochs, size) + "</div>"
    )


def training_gallery_html(cards: Sequence[TrainingCard], images: np.ndarray | None, classes: Sequence[str],
                          size: int = 96, total: int | None = None) -> str:
    """One CSS grid of training images' cards: the image (images[card.index], the training
    set; None: cards without images), index, the label trained on (and the data set's, in
    red, where it was flipped), mean ± std of p(label), forgetting events or never learned,
    and the right/wrong strip of its presentations. total: the grid's data-total."""
    return _grid([_training_card(c, images, classes, size) for c in cards], size,
                  f' data-total="{total}"' if total is not None else "")


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
            f"{_image_tag(images, a.index, size, path=a.path)}"
            f"{_index_line(a.index, a.path)}"
            f'<div>true <b>{esc(classes[a.true])}</b></div>'
            f"{_prediction(esc(names[0]), a, classes)}{_prediction(esc(names[1]), b, classes)}"
            f"</div>"
        )
    extra = "".join(f' data-{esc(str(k))}="{esc(str(v))}"' for k, v in (attrs or {}).items())
    return _grid(cards, size, extra)


@dataclass(frozen=True)
class PairCard:
    """A test image and its near-duplicate in the training set (see resnet_core.duplicates)."""
    test_index: int
    train_index: int
    distance: float  # mean |difference| in grey levels
    test_label: int
    train_label: int
    pred: int | None  # the run's prediction for the test image; None where it has none


def pair_gallery_html(pairs: Sequence[PairCard], test_images: np.ndarray | None, train_images: np.ndarray | None,
                      classes: Sequence[str], size: int = 80, total: int | None = None) -> str:
    """One CSS grid of pairs: the test image and its training twin side by side (size px each,
    pixelated; None: without images), their indices, distance and labels (the twin's in red
    where it differs) and the run's prediction for the test image (green right, red wrong)."""
    esc = html.escape
    cards = []
    for c in pairs:
        twin = (f'<b style="color:{WRONG_COLOUR}">{esc(classes[c.train_label])}</b>' if c.train_label != c.test_label
                else f"<b>{esc(classes[c.train_label])}</b>")
        pred = "" if c.pred is None else (
            f'<div>pred <b style="color:{RIGHT_COLOUR if c.pred == c.test_label else WRONG_COLOUR}">'
            f"{esc(classes[c.pred])}</b></div>")
        cards.append(
            f'<div class="rs-card rs-pair" data-test="{c.test_index}" data-train="{c.train_index}" '
            f'data-distance="{c.distance:.2f}" style="{_CARD_STYLE}">'
            f'<div style="display:flex;gap:4px;justify-content:center">{_image_tag(test_images, c.test_index, size)}'
            f"{_image_tag(train_images, c.train_index, size)}</div>"
            f'<div style="opacity:0.7">test #{c.test_index} · train #{c.train_index}</div>'
            f'<div title="mean |difference| of the pixels, in grey levels (0-255), at the best shift of at most '
            f'one pixel">distance <b>{c.distance:.1f}</b></div>'
            f"<div>test <b>{esc(classes[c.test_label])}</b> · train {twin}</div>{pred}</div>")
    return _grid(cards, 2 * size + 4, f' data-total="{total}"' if total is not None else "")
