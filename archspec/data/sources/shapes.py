"""Procedural images of simple shapes: a vision task that needs no download.

Each image has one shape at a random position and size, a random shape colour on a
random background colour (one dark, one light, so the shape is always visible), plus
Gaussian pixel noise. Everything is drawn from the seed with NumPy, and masks are
computed from broadcast coordinates with no per-image loop, so hundreds of 224x224
images take about a second.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for


def _circle(u, v):
    return u * u + v * v <= 1.0


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8


def _triangle(u, v):  # apex up at v = -1, base at v = 0.8
    return (v <= 0.8) & (np.abs(u) <= 0.5 * (v + 1.0))


def _cross(u, v):
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.25) & (av <= 1.0)) | ((av <= 0.25) & (au <= 1.0))


def _diamond(u, v):
    return np.abs(u) + np.abs(v) <= 1.0


def _ring(u, v):
    d2 = u * u + v * v
    return (d2 >= 0.45) & (d2 <= 1.0)


def _x(u, v):
    inside = np.maximum(np.abs(u), np.abs(v)) <= 0.85
    return inside & ((np.abs(u - v) <= 0.3) | (np.abs(u + v) <= 0.3))


def _bar(u, v):
    return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.3)


SHAPES = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross,
          "diamond": _diamond, "ring": _ring, "x": _x, "bar": _bar}
DEFAULT_SHAPE = (32, 32, 3)
NOISE = 0.05
NOISE_PLANES = 16
MIN_SIDE = 6  # smaller, and the shapes cannot be told apart


class Options(SourceOptions):
    classes: int = Field(4, ge=2, le=len(SHAPES), description="how many shape kinds")
    n: int = Field(2000, ge=1, description="number of images")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    h, w, c = image_shape(input_shape)
    n = min(options.n, cfg.limit or options.n)
    x, y = generate(n, options.classes, (h, w, c), seed)
    names = list(SHAPES)[:options.classes]
    return Raw(x, y, "classification", options.classes, names, "shapes", image=True)


def _noise(rng, n: int, h: int, w: int) -> np.ndarray:
    """Grey pixel noise (std NOISE) per image, picked from a bank of random planes and
    randomly mirrored: fresh numbers for every pixel of every image would cost more
    than drawing the images, and the task gains nothing from them."""
    bank = rng.standard_normal((NOISE_PLANES, h, w), dtype=np.float32) * NOISE
    planes = bank[rng.integers(NOISE_PLANES, size=n)]
    flip = rng.random(n) < 0.5
    planes[flip] = planes[flip, :, ::-1]
    return planes[..., None]


def image_shape(input_shape) -> tuple[int, int, int]:
    """(H, W, C) to draw at: the architecture's, so no resizing is ever needed."""
    if input_shape is None:
        return DEFAULT_SHAPE
    shape = tuple(int(s) for s in input_shape)
    drawn = {3: shape, 2: (*shape[:2], 1)}.get(len(shape)) or _square_for(shape)
    if drawn is None or min(drawn[:2]) < MIN_SIDE:
        raise DataError(f"cannot draw shape images for input shape {shape}", hint=(
            f"use (H, W, C) channels last, or (H, W), with H and W at least {MIN_SIDE}; "
            "or a flat size H*W or H*W*3"))
    return drawn


def _square_for(shape: tuple) -> tuple[int, int, int] | None:
    # A flat input: a square grey or colour image, flattened after drawing.
    if len(shape) != 1:
        return None
    for c in (1, 3):
        side = int(round((shape[0] / c) ** 0.5))
        if side * side * c == shape[0]:
            return (side, side, c)
    return None


def generate(n: int, classes: int, shape: tuple[int, int, int], seed: int):
    """n images (float32 in [0, 1], (n, H, W, C)) and balanced int32 labels."""
    h, w, c = shape
    rng = rng_for(seed, "shapes")
    y = rng.permutation(np.arange(n) % classes).astype(np.int32)
    side = min(h, w)
    r = rng.uniform(0.2, 0.4, n) * side                     # shape radius in pixels
    cx = rng.uniform(r, w - 1 - r)                          # centre keeps it in frame
    cy = rng.uniform(r, h - 1 - r)
    dark = rng.uniform(0.0, 0.4, (n, c))
    light = rng.uniform(0.6, 1.0, (n, c))
    flip = rng.random(n) < 0.5                              # light shape on dark, or not
    fg = np.where(flip[:, None], dark, light).astype(np.float32)
    bg = np.where(flip[:, None], light, dark).astype(np.float32)
    mask = np.empty((n, h, w), dtype=np.float32)
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    for k, draw in enumerate(list(SHAPES.values())[:classes]):
        idx = np.flatnonzero(y == k)
        u = (cols[None, None, :] - cx[idx, None, None]) / r[idx, None, None]
        v = (rows[None, :, None] - cy[idx, None, None]) / r[idx, None, None]
        mask[idx] = draw(u.astype(np.float32), v.astype(np.float32))
    # x = bg + mask * (fg - bg) + noise, in place: whole-array passes, no per-image loop.
    x = np.multiply(mask[..., None], (fg - bg)[:, None, None, :])
    x += bg[:, None, None, :]
    x += _noise(rng, n, h, w)
    return np.clip(x, 0.0, 1.0, out=x), y
