"""Reading one picture for `archspec maps` and `archspec pool`: PNG/JPEG through PIL, or a
NumPy `.npy` array.

The file must be a regular file (a FIFO would be waited on forever), an image may
declare at most archspec.data.images.MAX_PIXELS pixels (checked before decoding), and
an array must hold finite values only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archspec.viz import PictureInputError, VizError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_array_file(path) -> bool:
    return Path(path).suffix.lower() == ".npy"


def _checked(path) -> Path:
    """`path` if it is a regular file; the data package's message otherwise."""
    from archspec.data import DataError
    from archspec.data.files import require_file

    try:
        return require_file(path, "input file")
    except DataError as exc:
        raise _viz_error(exc) from None


def _viz_error(exc) -> VizError:
    return PictureInputError(f"{exc.file}: {exc.message}", exc.hint)


def read_npy(path) -> np.ndarray:
    from archspec.data import DataError
    from archspec.data.files import read_npy as read_checked
    from archspec.data.values import check_values

    path = _checked(path)
    try:
        a = read_checked(path, "input file")
    except DataError as exc:
        raise _viz_error(exc) from None
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise PictureInputError(f"{path} holds {a.dtype} values, not numbers")
    if np.iscomplexobj(a):
        raise PictureInputError(f"{path} holds {a.dtype} values, not real numbers")
    try:  # NaN or inf would turn the whole picture into one colour
        check_values(a.reshape(1, -1), str(path), "the array", record=lambda i: None)
    except DataError as exc:
        raise _viz_error(exc) from None
    return a.astype(np.float32)


def open_image(path, channels: int | None = None, size: tuple[int, int] | None = None):
    """A PIL image, converted to grey (1 channel) or RGB (3) and resized to (h, w) if asked."""
    from PIL import Image

    from archspec.data import DataError
    from archspec.data.images import is_sixteen_bit
    from archspec.data.images import open_image as open_checked

    try:
        img = open_checked(_checked(path))
    except DataError as exc:  # damaged, not an image, or declaring too many pixels
        raise _viz_error(exc) from None
    if is_sixteen_bit(img):  # to 8-bit: converting would clip the values to 255
        img = Image.fromarray(np.round(np.asarray(img, np.float32) / 257).astype(np.uint8))
    if channels == 1:
        img = img.convert("L")
    elif channels == 3 or channels is None and img.mode not in ("L", "I;16", "I", "F"):
        img = img.convert("RGB")
    else:
        img = img.convert("L")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return img


def image_array(path, channels: int | None = None, size: tuple[int, int] | None = None):
    """(H, W, C) float32 in [0, 1]."""
    a = np.asarray(open_image(path, channels, size), dtype=np.float32) / 255.0
    return a[..., None] if a.ndim == 2 else a


def to_unit_range(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
