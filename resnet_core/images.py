"""Images from outside CIFAR-10 (files, uploads) as the 32x32 RGB the models take.

What is accepted: PNG and JPEG files of at most MAX_BYTES (20 MB), at most MAX_SIDE
(10,000) pixels a side and at most PIL's ``Image.MAX_IMAGE_PIXELS`` in all (89,478,485
by default, a 9,459 px square), all judged from the header before any pixel is decoded,
so a small file claiming a huge image (a decompression bomb) is refused without
allocating it: PIL's bomb warning is made an error.

How an image becomes the model's input, in this order:

1. EXIF orientation applied (a phone photo is upright as its viewer shows it);
2. transparency composited onto white, then RGB (greyscale and palette images too);
3. the largest centred square cropped (a CIFAR image is a square around its object, so a
   wide photo keeps its middle rather than being squashed) and resized to 32x32 with PIL's
   bilinear filter, which widens its support when shrinking, i.e. averages all the source
   pixels behind each output pixel (antialiased);
4. as uint8 (3, 32, 32), channels first like the CIFAR arrays; the run's normalisation is
   applied by the model side (:meth:`resnet_core.run_model.RunModel.inputs`).

Every refusal is :class:`ImageRefused` with one line naming the file.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_BYTES = 20 * 1024 * 1024
MAX_SIDE = 10_000
FORMATS = ("PNG", "JPEG")
SIZE = 32


class ImageRefused(Exception):
    """An image that cannot be used: one line naming it and why."""


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def read_image_file(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, or ImageRefused for a missing file, a folder, an empty
    file or one over MAX_BYTES (judged from its size before reading)."""
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise ImageRefused(f"{path}: no such file") from None
    except OSError as e:
        raise ImageRefused(f"{path}: {e.strerror or e}") from None
    if path.is_dir():
        raise ImageRefused(f"{path}: is a folder, not an image")
    check_size(str(path), size)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageRefused(f"{path}: {e.strerror or e}") from None


def check_size(name: str, size: int) -> None:
    if size == 0:
        raise ImageRefused(f"{name}: empty file")
    if size > MAX_BYTES:
        raise ImageRefused(f"{name}: {_mb(size)} is over the {_mb(MAX_BYTES)} limit")


def model_input(data: bytes, name: str) -> np.ndarray:
    """The image in data (PNG or JPEG bytes) as uint8 (3, 32, 32), made as the module
    docstring says; ImageRefused for anything else."""
    check_size(name, len(data))
    with warnings.catch_warnings():
        # PIL warns above Image.MAX_IMAGE_PIXELS and raises only above twice that: refuse at once.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                width, height = im.size
                if width > MAX_SIDE or height > MAX_SIDE:
                    raise ImageRefused(f"{name}: {width:,}x{height:,} pixels is over the "
                                       f"{MAX_SIDE:,}x{MAX_SIDE:,} limit")
                im.load()
                return _to_model_size(im)
        except ImageRefused:
            raise
        except Image.UnidentifiedImageError:
            raise ImageRefused(f"{name}: not a PNG or JPEG image") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageRefused(f"{name}: over {Image.MAX_IMAGE_PIXELS:,} pixels (PIL's decompression-bomb limit)"
                               ) from None
        except (OSError, ValueError, SyntaxError) as e:  # truncated or damaged data
            raise ImageRefused(f"{name}: damaged image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                               ) from None


def _to_model_size(im: Image.Image) -> np.ndarray:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    im = ImageOps.fit(im.convert("RGB"), (SIZE, SIZE), method=Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
