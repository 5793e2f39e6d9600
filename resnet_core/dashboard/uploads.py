"""The Predict page without Streamlit: uploaded files to model inputs, each on its own (one
bad file never stops the others), and the card that shows what the model made of one."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..cifar import IMAGE_FOLDER
from ..images import MAX_BYTES, MAX_PIXELS, MAX_SIDE, SIZE, ImageRefused, model_input
from .gallery_cards import png_data_uri
from .heatmap import overlay

# The top class's bar in the studio's blue (figure_style.TRAIN_COLOUR; figure_style imports plotly, which
# this page does not draw), the others paler: red means wrong everywhere else in the studio.
TOP_CLASS_COLOUR, OTHER_CLASS_COLOUR = "#4C78A8", "#A5BCD6"
# A class name's column beside its bar: CIFAR-100's longest names ("aquarium_fish", 13 characters)
# need about 95 px of 13 px text (estimated at 7.3 px a character), more than the 90 px it had; a
# longer name is cut with an ellipsis and its hover names it whole.
NAME_PX = 110

# The uploader's limit a file, MB, as .streamlit/config.toml's server.maxUploadSize says too (a
# test reads it); the label says it, and REFUSED_FILE_STYLE shows why a larger file is refused.
UPLOAD_LIMIT_MB = MAX_BYTES // 2**20
UPLOAD_LABEL = f"Images (PNG, JPEG or WebP, at most {UPLOAD_LIMIT_MB} MB each)"
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp")  # what the decoder reads, as an image folder's files may be
UPLOAD_HELP = (f"At most {UPLOAD_LIMIT_MB} MB, {MAX_SIDE:,} px a side and, for a PNG, {MAX_PIXELS / 1e6:g} "
               "megapixels each (a larger JPEG is decoded reduced, unless progressive); a larger file is refused, "
               "saying so under it.")
# Streamlit refuses a file over the limit in the browser, so the page never sees it: the file's
# chip gets a red icon, and the reason ("File must be 20.0MB or smaller.") is an alert hidden
# but for screen readers (a 1 px clipped box), shown only while the pointer is on the chip.
# This style shows that alert under the chip (checked in headless Chromium, Streamlit 1.67).
REFUSED_FILE_STYLE = """<style>
[data-testid="stFileChip"][aria-invalid="true"] { flex-wrap: wrap; }
[data-testid="stFileChip"][aria-invalid="true"] [role="alert"] {
  position: static; width: auto; height: auto; clip: auto; overflow: visible; white-space: normal;
  flex-basis: 100%; font-size: 0.8rem; color: #C0392B;
}
</style>"""


@dataclass(frozen=True)
class Upload:
    name: str
    image: np.ndarray | None  # uint8 (3, S, S) as the model sees it, S the run's image size; None when refused
    problem: str | None  # the one-line refusal (it names the file)


def read_uploads(files: Sequence[tuple[str, bytes]], size: int = SIZE, resize: str = "crop") -> list[Upload]:
    """Each (file name, bytes) through the same checks and conversion as the command line
    (:func:`resnet_core.images.model_input`), to a run's image size by its resize rule."""
    out = []
    for name, data in files:
        try:
            out.append(Upload(name, model_input(data, name, size, resize), None))
        except ImageRefused as e:
            out.append(Upload(name, None, str(e)))
    return out


def conversion_caption(size: int, resize: str, dataset: str = IMAGE_FOLDER) -> str:
    """How the Predict page turns an upload into the run's input, in words. Only an image
    folder's images were resized so: CIFAR's are 32x32 as published (the caption said "as the
    run's images were" for CIFAR runs too)."""
    shape = ("cropped to its centred square and resized" if resize == "crop"
             else "squashed, both sides resized")
    like = "as the run's images were" if dataset == IMAGE_FOLDER else "the size of the run's CIFAR images"
    return (f"Each image is turned upright (EXIF), put on white where transparent, {shape} to {size}x{size} "
            f"(bilinear, antialiased), {like}, then normalised with the run's statistics: the "
            "pictures below are exactly what the model sees.")


def _picture(image: np.ndarray, size: int, caption: str) -> str:
    return (f'<figure style="margin:0;text-align:center"><img src="{png_data_uri(image)}" width="{size}" '
            f'height="{size}" alt="{html.escape(caption)}" style="image-rendering:pixelated;border-radius:3px">'
            f'<figcaption style="font-size:11px;opacity:0.7">{html.escape(caption)}</figcaption></figure>')


def prediction_card_html(name: str, image: np.ndarray, cam: np.ndarray, top: Sequence[tuple[str, float]],
                         size: int = 128) -> str:
    """One file's card: the model's input and its Grad-CAM (of the top class) side by side,
    pixelated at size px, then the top classes with their probabilities as bars."""
    bars = "".join(
        f'<div style="display:flex;align-items:center;gap:6px;margin:2px 0">'
        f'<span style="width:{NAME_PX}px;overflow:hidden;text-overflow:ellipsis" title="{html.escape(c)}">'
        f"{html.escape(c)}</span>"
        f'<span style="flex:1;background:rgba(128,128,128,0.15);border-radius:2px;height:12px">'
        f'<span style="display:block;width:{100 * p:.1f}%;height:12px;border-radius:2px;'
        f'background:{TOP_CLASS_COLOUR if i == 0 else OTHER_CLASS_COLOUR}"></span></span>'
        f'<span style="width:52px;text-align:right">{100 * p:.1f}%</span></div>'
        for i, (c, p) in enumerate(top))
    return (f'<div class="rs-predict" data-file="{html.escape(name)}" data-top="{html.escape(top[0][0])}" '
            f'style="display:flex;gap:16px;align-items:flex-start;border:1px solid rgba(128,128,128,0.35);'
            f'border-radius:6px;padding:8px;margin-bottom:8px;font-size:13px">'
            f"{_picture(image, size, 'as the model sees it')}"
            f"{_picture(overlay(image, cam), size, f'Grad-CAM of {top[0][0]}')}"
            f'<div style="flex:1;min-width:200px"><div style="margin-bottom:4px"><b>{html.escape(name)}</b></div>'
            f"{bars}</div></div>")
