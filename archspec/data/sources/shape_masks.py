"""Procedural images of several shapes with their segmentation masks: a per-pixel task
that needs no download.

Each image has `shapes` shapes of random kinds, sizes and positions (a later one is painted
over an earlier one where they overlap), each in its own colour on one background colour
(shapes light on a dark background, or dark on a light one), plus Gaussian pixel noise. The
label of an example is its (H, W) mask of class ids: 0 for the background, 1 + k for a
pixel of shape kind k (the kinds of `shapes`, in its order). Everything is drawn from the
seed at the architecture's input size, so masks are never resized."""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for
from .shapes import MIN_SIDE, SHAPES, _noise


class Options(SourceOptions):
    classes: int = Field(3, ge=1, le=len(SHAPES), description="how many shape kinds "
                         "(the masks have one more class: the background)")
    n: int = Field(1000, ge=1, description="number of images")
    shapes: int = Field(2, ge=1, le=8, description="shapes per image")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    h, w, c = mask_shape(input_shape)
    n = min(options.n, cfg.limit or options.n)
    x, y = generate(n, options.classes, (h, w, c), seed, options.shapes)
    names = ["background", *list(SHAPES)[:options.classes]]
    return Raw(x, y, "classification", options.classes + 1, names, "shapes_masks", image=True)


def mask_shape(input_shape) -> tuple[int, int, int]:
    """(H, W, C) to draw at: the architecture's image input."""
    if input_shape is None:
        return (32, 32, 3)
    shape = tuple(int(s) for s in input_shape)
    drawn = {3: shape, 2: (*shape[:2], 1)}.get(len(shape))
    if drawn is None or min(drawn[:2]) < MIN_SIDE:
        raise DataError(f"cannot draw masked shape images for input shape {shape}", hint=(
            f"masks are per pixel: use an image input (H, W, C) or (H, W), with H and W at "
            f"least {MIN_SIDE}"))
    return drawn


def generate(n: int, classes: int, shape: tuple[int, int, int], seed: int, count: int = 2):
    """n images (float32 in [0, 1], (n, H, W, C)) and their int32 masks (n, H, W)."""
    h, w, c = shape
    rng = rng_for(seed, "shapes_masks")
    side = min(h, w)
    light_bg = rng.random(n) < 0.5
    x = np.empty((n, h, w, c), np.float32)
    x[:] = np.where(light_bg[:, None], rng.uniform(0.6, 1.0, (n, c)),
                    rng.uniform(0.0, 0.4, (n, c)))[:, None, None, :]
    mask = np.zeros((n, h, w), np.int32)
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    for _ in range(count):
        kind = rng.integers(classes, size=n)
        r = rng.uniform(0.15, 0.3, n) * side                     # radius in pixels
        cx, cy = rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r)
        fg = np.where(light_bg[:, None], rng.uniform(0.0, 0.4, (n, c)),
                      rng.uniform(0.6, 1.0, (n, c))).astype(np.float32)
        inside = np.zeros((n, h, w), bool)
        for k, draw in enumerate(list(SHAPES.values())[:classes]):
            idx = np.flatnonzero(kind == k)
            u = (cols[None, None, :] - cx[idx, None, None]) / r[idx, None, None]
            v = (rows[None, :, None] - cy[idx, None, None]) / r[idx, None, None]
            inside[idx] = draw(u.astype(np.float32), v.astype(np.float32))
        mask = np.where(inside, (kind + 1)[:, None, None].astype(np.int32), mask)
        x = np.where(inside[..., None], fg[:, None, None, :], x)
    x += _noise(rng, n, h, w)
    return np.clip(x, 0.0, 1.0, out=x), mask
