"""Opening one image file (through PIL) without trusting its header.

A few hundred kilobytes of PNG can declare 30000x30000 pixels; decoding it would take
gigabytes. The declared size is checked against MAX_PIXELS before any pixel is decoded,
and PIL's own decompression-bomb refusal becomes the same DataError.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError
from .files import open_file

MAX_PIXELS = 50_000_000  # about 7000x7000; far above any network input
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
TOO_LARGE_HINT = (f"shrink the image to at most {MAX_PIXELS:,} pixels first (the network "
                  "reads far fewer); a small file declaring this many may be a "
                  "decompression bomb")
DAMAGED = "the file is damaged or not an image; remove or replace it"


def open_image(path: str | Path, what: str = "image"):
    """The image at `path`, decoded, or a DataError naming the file."""
    with image_header(path, what) as img:
        img.load()  # a damaged file fails here: image_header names it
    return img


@contextmanager
def image_header(path: str | Path, what: str = "image"):
    """The image at `path` opened, its header read and its size checked, no pixel decoded.

    The file is opened through files.open_file (a FIFO or device is refused, never waited
    on); PIL's decompression-bomb refusal of a header becomes the same DataError as ours,
    and so does a failure to decode inside the `with` (a truncated or damaged file)."""
    from PIL import Image

    with open_file(path, what) as f, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(f) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise too_large(path, f"{w}x{h} = {w * h:,}")
                yield img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise too_large(path, f"{int(found.group(1)):,}" if found else "too many") \
                from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image: {exc}", file=str(path), hint=DAMAGED) from None


def too_large(path: Path, declared: str) -> DataError:
    return DataError(f"image declares {declared} pixels, more than the {MAX_PIXELS:,} read",
                     file=str(path), hint=TOO_LARGE_HINT)


def is_sixteen_bit(img) -> bool:
    return img.mode in SIXTEEN_BIT
