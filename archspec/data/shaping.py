"""Fitting examples to the architecture's input shape: reshape, resize, grey to colour."""
from __future__ import annotations

import math

import numpy as np

from ..fmt import fmt_shape
from .errors import DataError

RESIZE_HINT = "set `resize: true` in the data section, or change the architecture's input shape"


def fit_to_shape(x: np.ndarray, target: tuple[int, ...] | None, *, image: bool,
                 resize: bool, source: str) -> np.ndarray:
    """Return x as (N, *target). Only lossless reshapes happen unasked; resizing and
    grey-to-colour happen only for images and only when `resize` is on."""
    have = tuple(x.shape[1:])
    if target is None or have == tuple(target):
        return x
    target = tuple(int(t) for t in target)
    if _same_layout(have, target):
        return x.reshape(len(x), *target)
    if image and len(have) == 3 and len(target) in (2, 3):
        return _fit_image(x, target, resize, source)
    raise _mismatch(have, target, source, hint=(
        f"make the architecture's input shape {fmt_shape(have)}"
        + (" (or one holding the same values, e.g. flat)" if len(have) > 1 else "")
        + (", or an image shape (H, W, C) to resize to" if image else "")))


def _same_layout(have: tuple, target: tuple) -> bool:
    # Flattening, or adding/dropping a trailing channel of 1, keeps every value in place;
    # other equal-size reshapes (e.g. HWC to CHW) would scramble pixels, so refuse them.
    if math.prod(have) != math.prod(target):
        return False
    return len(have) == 1 or len(target) == 1 or _strip_ones(have) == _strip_ones(target)


def _strip_ones(shape: tuple) -> tuple:
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _fit_image(x: np.ndarray, target: tuple, resize: bool, source: str) -> np.ndarray:
    h, w, c = target if len(target) == 3 else (*target, 1)
    _, xh, xw, xc = x.shape
    if len(target) == 3 and target[0] in (1, 3, 4) and target[2] > 4:
        raise _mismatch(x.shape[1:], target, source, hint=(
            f"images are channels last (H, W, C): did you mean ({target[1]}, {target[2]}, "
            f"{target[0]})?"))
    if not resize:
        raise _mismatch(x.shape[1:], target, source, hint=RESIZE_HINT)
    if xc != c and not (xc == 1 and c == 3):
        raise _mismatch(x.shape[1:], target, source, hint=(
            f"only grey images (1 channel) are turned into colour (3); these have {xc}: "
            "convert the images, or change the architecture's input channels"))
    if (xh, xw) != (h, w):
        x = resize_images(x, h, w)
    if xc != c:
        x = np.repeat(x, c, axis=-1)  # grey to colour: the same value in R, G and B
    return x.reshape(len(x), *target)


def _mismatch(have, target, source, hint) -> DataError:
    return DataError(f"data shape {fmt_shape(have)} does not fit the architecture's input "
                     f"shape {fmt_shape(target)}", file=source, hint=hint or RESIZE_HINT)


def resize_images(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of (N, H, W, C) images with PIL, one float channel at a time so
    any value range and channel count survive unchanged."""
    from PIL import Image

    out = np.empty((len(x), h, w, x.shape[-1]), dtype=np.float32)
    for i in range(len(x)):
        for c in range(x.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(x[i, :, :, c], dtype=np.float32))
            out[i, :, :, c] = np.asarray(plane.resize((w, h), Image.Resampling.BILINEAR))
    return out
