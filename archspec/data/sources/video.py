"""Toy video: a square moves across the frame; which way (left, right, up, down)?

Each example is a (time, height, width, channels) clip: a bright square on a dark
background (random shades and size) moving one to two pixels per frame in the class's
direction from a random start that keeps it in frame, plus Gaussian pixel noise. Any
single frame looks alike for every class, so only motion tells them apart: a task for
3-D (space-time) convolutions. Drawn from the seed with NumPy, without a per-clip loop.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for

DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}  # (dy, dx)
DEFAULT_SHAPE = (8, 16, 16, 1)
MIN_FRAMES, MIN_SIDE = 2, 8


class Options(SourceOptions):
    n: int = Field(1000, ge=1, description="number of clips")
    classes: int = Field(4, ge=2, le=len(DIRECTIONS),
                         description="2: left and right; 3 adds up; 4: all four directions")
    noise: float = Field(0.1, ge=0, description="std of Gaussian pixel noise")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    shape = clip_shape(input_shape)
    n = min(options.n, cfg.limit or options.n)
    x, y = generate(n, options.classes, shape, options.noise, seed)
    return Raw(x, y, "classification", options.classes, list(DIRECTIONS)[:options.classes],
               "video")


def clip_shape(input_shape) -> tuple[int, int, int, int]:
    """(T, H, W, C) from the architecture's input: (T, H, W, C), or (T, H, W) for grey."""
    if input_shape is None:
        return DEFAULT_SHAPE
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (*shape, 1)
    if len(shape) != 4 or shape[0] < MIN_FRAMES or min(shape[1:3]) < MIN_SIDE:
        raise DataError(f"cannot draw video clips for input shape {shape}", hint=(
            f"use (time, height, width, channels) with at least {MIN_FRAMES} frames and "
            f"frames of at least {MIN_SIDE}×{MIN_SIDE}"))
    return shape


def generate(n: int, classes: int, shape: tuple[int, int, int, int], noise: float, seed: int):
    """n clips (float32 in [0, 1], (n, T, H, W, C)) and balanced int32 labels."""
    t, h, w, c = shape
    rng = rng_for(seed, "video")
    y = rng.permutation(np.arange(n) % classes).astype(np.int32)
    step = np.array(list(DIRECTIONS.values()), np.float64)[y]          # (n, 2): dy, dx
    side = np.floor(rng.uniform(0.15, 0.3, n) * min(h, w)).clip(2)[:, None]
    speed = rng.uniform(1.0, 2.0, n)
    speed = np.minimum(speed, (min(h, w) - side[:, 0]) / max(t - 1, 1))  # stays in frame
    travel = step * (speed * (t - 1))[:, None]                          # (n, 2) total move
    size = np.array([h, w], np.float64)
    # the start keeps the square inside the frame at the first and the last frame
    lo = np.maximum(0.0, -travel)
    hi = size - side - np.maximum(0.0, travel)
    start = lo + rng.random((n, 2)) * np.maximum(hi - lo, 0.0)
    frames = np.arange(t, dtype=np.float64)
    corner = start[:, None, :] + step[:, None, :] * (speed[:, None] * frames)[:, :, None]
    rows, cols = np.arange(h)[None, None, :], np.arange(w)[None, None, :]
    top, left = np.round(corner[..., 0])[..., None], np.round(corner[..., 1])[..., None]
    in_rows = (rows >= top) & (rows < top + side[:, :, None])          # (n, T, H)
    in_cols = (cols >= left) & (cols < left + side[:, :, None])        # (n, T, W)
    mask = in_rows[..., :, None] & in_cols[..., None, :]                # (n, T, H, W)
    fg = rng.uniform(0.6, 1.0, (n, 1, 1, 1, c))
    bg = rng.uniform(0.0, 0.3, (n, 1, 1, 1, c))
    x = bg + mask[..., None] * (fg - bg) + noise * rng.standard_normal((n, t, h, w, c))
    return np.clip(x, 0.0, 1.0).astype(np.float32), y
