"""Images from outside CIFAR-10 (files, uploads, image folders) as the RGB squares the models take.

What is accepted: PNG, JPEG and WebP files of at most MAX_BYTES (20 MB), at most MAX_SIDE
(10,000) pixels a side and at most PIL's ``Image.MAX_IMAGE_PIXELS`` in all (89,478,485
by default, a 9,459 px square), all judged from the header before any pixel is decoded,
so a small file claiming a huge image (a decompression bomb) is refused without
allocating it: PIL's bomb warning is made an error. What is decoded is at most MAX_PIXELS
(25 megapixels; PIL holds a colour pixel in 4 bytes, so 100 MB): a JPEG is decoded
reduced (libjpeg's 1/2 to 1/8 scales, to no less than DRAFT_SIDE a side), which brings
any JPEG within the limits under it; a PNG, decoded whole, over it is refused. A progressive
or multi-scan JPEG is held whole as DCT coefficients while it decodes, whatever the scale, so
it is refused over MAX_SAMPLES_HELD of them. One image
then costs at most about 250 MB at its peak, the file's bytes included (measured in
tests/test_predict.py: a 9,400 px square PNG of zeros took 1 GB before these limits).

How an image becomes the model's input, in this order:

1. resized to size x size (32 unless asked) by one of RESIZE_RULES: "crop", the largest
   centred square cropped (a CIFAR image is a square around its object, so a wide photo
   keeps its middle rather than being squashed), or "squash", the whole image stretched to
   the square; with PIL's bilinear filter, which widens its support when shrinking, i.e.
   averages all the source pixels behind each output pixel (antialiased; a transparent
   image in premultiplied alpha); an image already of that size is copied unchanged (a
   CIFAR image exported to PNG decodes to its exact pixels); done first, so that the steps
   below work on the small image, not on a full-size copy;
2. EXIF orientation applied (a phone photo is upright as its viewer shows it; the centred
   square, and a squashed square, are the same either way round);
3. transparency composited onto white, then RGB (greyscale and palette images too);
4. as uint8 (3, size, size), channels first like the CIFAR arrays; the run's normalisation is
   applied by the model side (:meth:`resnet_core.run_model.RunModel.inputs`).

Every refusal is :class:`ImageRefused` with one line naming the file.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .runs.files import file_kind

MAX_BYTES = 20 * 1024 * 1024
MAX_SIDE = 10_000
MAX_PIXELS = 25_000_000  # decoded, see above
# A progressive or multi-scan JPEG is held whole, as 2-byte DCT coefficients, whatever the
# scale it is decoded to (draft does not help): at most this many, 150 MB, as a 25-megapixel
# colour photo has (a 9,400 px square one took 514 MB, a CMYK one 682 MB).
MAX_SAMPLES_HELD = 3 * MAX_PIXELS
DRAFT_SIDE = 256  # a large JPEG is decoded reduced to no less than this a side, 8x a 32 px input (or 8x size)
FORMATS = ("PNG", "JPEG", "WEBP")
SIZE = 32
RESIZE_RULES = ("crop", "squash")


class ImageRefused(Exception):
    """An image that cannot be used: one line naming it and why."""


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def read_image_file(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, or ImageRefused for a missing file, a folder, a FIFO or
    device, an empty file or one over MAX_BYTES (judged from its size before reading)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageRefused(f"{path}: no such file") from None
    except OSError as e:
        raise ImageRefused(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageRefused(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read, a device never end it
        raise ImageRefused(f"{path}: is {file_kind(st.st_mode)}, not an image file")
    check_size(str(path), st.st_size)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageRefused(f"{path}: {e.strerror or e}") from None


def check_size(name: str, size: int) -> None:
    if size == 0:
        raise ImageRefused(f"{name}: empty file")
    if size > MAX_BYTES:
        raise ImageRefused(f"{name}: {_mb(size)} is over the {_mb(MAX_BYTES)} limit")


def decode_image_file(path: str | os.PathLike, size: int = SIZE, resize: str = "crop") -> np.ndarray:
    """The image file at path as uint8 (3, size, size) (model_input); ImageRefused, one line naming it."""
    return model_input(read_image_file(path), str(path), size, resize)


def model_input(data: bytes, name: str, size: int = SIZE, resize: str = "crop") -> np.ndarray:
    """The image in data (PNG, JPEG or WebP bytes) as uint8 (3, size, size), made as the
    module docstring says, resize one of RESIZE_RULES; ImageRefused for anything else."""
    if resize not in RESIZE_RULES:
        raise ValueError(f"unknown resize rule {resize!r}: choose one of {', '.join(RESIZE_RULES)}")
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
                if im.format == "JPEG" and (im.info.get("progressive") or _jpeg_scans(data) > 1):
                    samples = _jpeg_samples(im)
                    if samples > MAX_SAMPLES_HELD:
                        raise ImageRefused(f"{name}: a {'progressive' if im.info.get('progressive') else 'multi-scan'}"
                                           f" JPEG of {width:,}x{height:,} is held whole while decoded, "
                                           f"{samples / 1e6:.0f} million samples, over the limit of "
                                           f"{MAX_SAMPLES_HELD / 1e6:g} million")
                draft = max(DRAFT_SIDE, 8 * size)
                im.draft("RGB", (draft, draft))  # JPEG only: decode at a reduced scale
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise ImageRefused(f"{name}: {width:,}x{height:,} is {width * height / 1e6:.1f} megapixels "
                                       f"decoded, over the {MAX_PIXELS / 1e6:g} megapixel limit")
                im.load()
                return _to_model_size(im, size, resize)
        except ImageRefused:
            raise
        except Image.UnidentifiedImageError:
            raise ImageRefused(f"{name}: not a PNG, JPEG or WebP image") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ImageRefused(f"{name}: over {Image.MAX_IMAGE_PIXELS:,} pixels (PIL's decompression-bomb limit)"
                               ) from None
        except (OSError, ValueError, SyntaxError) as e:  # truncated or damaged data
            raise ImageRefused(f"{name}: damaged image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                               ) from None


def _jpeg_samples(im: Image.Image) -> int:
    """The DCT coefficients libjpeg holds for a whole JPEG: each component's pixels, fewer
    where it is subsampled (im.layer: (id, horizontal, vertical sampling, table) each)."""
    width, height = im.size
    h_max, v_max = max(c[1] for c in im.layer), max(c[2] for c in im.layer)
    return sum(math.ceil(width * h / h_max) * math.ceil(height * v / v_max) for _, h, v, _ in im.layer)


def _jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG, walked segment by segment from its start, so that
    one inside a segment (an EXIF thumbnail's) is not counted; in entropy-coded data a 0xFF
    byte is followed by 0x00 or a restart marker, neither of which starts a segment."""
    i, scans = 2, 0
    while (i := data.find(b"\xff", i)) != -1 and i + 4 <= len(data):
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x00 or 0xD0 <= marker <= 0xD7:  # fill, stuffed 0xFF, restart
            i += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:  # end of image
            break
        scans += marker == 0xDA
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return scans


def _to_model_size(im: Image.Image, size: int, resize: str) -> np.ndarray:
    transparent = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode.startswith("I"):  # 16-bit grey PNG (I;16, I): convert clips at 255, scale 0..65535 to 0..255 first
        im = im.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    if im.mode not in ("RGB", "L", "RGBA"):  # bilinear resizing needs these; P, LA, CMYK, 16-bit... converted
        im = im.convert("RGBA" if transparent else "RGB")
    # The resized image keeps im.info, EXIF included, for exif_transpose.
    # Both rules commute with the EXIF rotation, as the output is square.
    if resize == "crop":
        small = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
    else:
        small = im.resize((size, size), Image.Resampling.BILINEAR)
    small = ImageOps.exif_transpose(small)
    if transparent:
        small = Image.alpha_composite(Image.new("RGBA", small.size, (255, 255, 255, 255)), small)
    return np.asarray(small.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()
