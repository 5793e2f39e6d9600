"""The files the Analyze page offers for download: an epoch's predictions and its confusion
matrix as CSV, and the matrix as a PNG picture.

The PNG is drawn with PIL here (cells coloured by Plotly's "Blues" as on the page, each
with its count, class names along both axes) rather than exported from the Plotly figure:
that needs kaleido, which brings a headless Chrome of its own (about 100 MB more, and
Chrome is a download this sandbox and many servers cannot make), for one static picture.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from .gallery_records import confidences
from .heatmap import BLUES, ramp


def predictions_csv(preds: Mapping[str, np.ndarray], classes: Sequence[str]) -> bytes:
    """One row per record: index (into its image set), label, pred (class names), confidence,
    loss, then top1_class, top1_prob, ... for each of the k recorded predictions."""
    topk_classes, topk_probs = np.asarray(preds["topk_classes"]), np.asarray(preds["topk_probs"])
    names = np.asarray(list(classes), dtype=object)
    table = {"index": np.asarray(preds["indices"]), "label": names[np.asarray(preds["labels"])],
             "pred": names[np.asarray(preds["preds"])], "confidence": confidences(preds).astype(np.float64),
             "loss": np.asarray(preds["loss"], dtype=np.float64)}
    for j in range(topk_classes.shape[1]):
        table[f"top{j + 1}_class"] = names[topk_classes[:, j]]
        table[f"top{j + 1}_prob"] = topk_probs[:, j].astype(np.float64)
    return pd.DataFrame(table).to_csv(index=False, float_format="%.6g").encode()


def confusion_csv(cm: np.ndarray, classes: Sequence[str]) -> bytes:
    """The matrix of counts with class names: rows true, columns predicted."""
    frame = pd.DataFrame(np.asarray(cm, dtype=np.int64), index=list(classes), columns=list(classes))
    frame.index.name = "true \\ predicted"
    return frame.to_csv().encode()


def confusion_png(cm: np.ndarray, classes: Sequence[str], cell: int = 56, title: str = "") -> bytes:
    """The matrix as a PNG: each cell coloured by its count over the largest count, the count
    written in it (white on dark cells), true classes down the left, predicted classes along
    the top (written upwards), cell px a side."""
    cm = np.asarray(cm, dtype=np.int64)
    n = cm.shape[0]
    font = ImageFont.load_default(size=max(10, cell // 4))
    label_w = max(int(font.getlength(str(c))) for c in classes) + 12
    top = label_w + (24 if title else 4)
    image = Image.new("RGB", (label_w + n * cell + 8, top + n * cell + 28), "white")
    draw = ImageDraw.Draw(image)
    colours = ramp(cm / max(1, cm.max()), BLUES)
    dark = cm > 0.55 * max(1, cm.max())
    if title:
        draw.text((4, 4), title, fill="black", font=font)
    for t in range(n):
        draw.text((label_w - 6, top + t * cell + cell / 2), str(classes[t]), fill="black", font=font, anchor="rm")
        for p in range(n):
            x0, y0 = label_w + p * cell, top + t * cell
            draw.rectangle((x0, y0, x0 + cell - 2, y0 + cell - 2), fill=tuple(int(v) for v in colours[t, p]))
            draw.text((x0 + cell / 2, y0 + cell / 2), f"{cm[t, p]:,}", font=font, anchor="mm",
                      fill="white" if dark[t, p] else "black")
    for p in range(n):  # predicted class names, written sideways above their columns
        width = int(font.getlength(str(classes[p]))) + 4
        label = Image.new("RGB", (width, cell), "white")
        ImageDraw.Draw(label).text((2, cell / 2), str(classes[p]), fill="black", font=font, anchor="lm")
        rotated = label.rotate(90, expand=True)
        image.paste(rotated, (label_w + p * cell, top - 4 - rotated.height))
    draw.text((label_w, top + n * cell + 6), "rows: true class, columns: predicted class", fill="dimgray", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
