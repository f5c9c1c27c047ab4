"""Synthetic time series: which waveform is this? A sequence task that needs no download.

Each example is a (time, channels) signal of one waveform kind (the class): every channel
has its own random frequency (1.5 to 6 cycles per window), phase, amplitude and offset,
plus Gaussian noise of std `noise`. The `noise` class is low-pass filtered random noise
of the same amplitude. Drawn from the seed with NumPy, one whole-array pass per class.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for


def _sine(p):
    return np.sin(2 * np.pi * p)


def _square(p):
    return np.where(p % 1.0 < 0.5, 1.0, -1.0)


def _sawtooth(p):
    return 2.0 * (p % 1.0) - 1.0


def _triangle(p):
    return 1.0 - 4.0 * np.abs((p % 1.0) - 0.5)


def _chirp(p):  # frequency rising through the window: phase grows quadratically
    return np.sin(2 * np.pi * p * np.linspace(0.5, 1.5, p.shape[1])[None, :, None])


# In order of use: `classes: 4` is sine, square, sawtooth and noise; the triangle (close to
# a sine under noise) and the chirp make harder tasks.
WAVES = {"sine": _sine, "square": _square, "sawtooth": _sawtooth, "noise": None,
         "triangle": _triangle, "chirp": _chirp}
DEFAULT_SHAPE = (64, 1)
MIN_LENGTH = 8


class Options(SourceOptions):
    n: int = Field(2000, ge=1, description="number of series")
    classes: int = Field(4, ge=2, le=len(WAVES),
                         description="how many waveform kinds: sine, square, sawtooth, "
                                     "noise, triangle, chirp (the first `classes`)")
    noise: float = Field(0.2, ge=0, description="std of Gaussian noise added to every value")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    t, c = series_shape(input_shape)
    n = min(options.n, cfg.limit or options.n)
    x, y = generate(n, options.classes, (t, c), options.noise, seed)
    return Raw(x, y, "classification", options.classes, list(WAVES)[:options.classes],
               "timeseries")


def series_shape(input_shape) -> tuple[int, int]:
    """(time, channels) from the architecture's input: (T, C), or (T,) for one channel."""
    if input_shape is None:
        return DEFAULT_SHAPE
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 2) or shape[0] < MIN_LENGTH:
        raise DataError(f"cannot make time series for input shape {shape}", hint=(
            f"use (time, channels) or (time,), with at least {MIN_LENGTH} time steps"))
    return (shape[0], 1) if len(shape) == 1 else shape


def generate(n: int, classes: int, shape: tuple[int, int], noise: float, seed: int):
    """n series (float32, (n, T, C)) and balanced int32 labels."""
    t, c = shape
    rng = rng_for(seed, "timeseries")
    y = rng.permutation(np.arange(n) % classes).astype(np.int32)
    cycles = rng.uniform(1.5, 6.0, (n, 1, c))
    phase = rng.uniform(0.0, 1.0, (n, 1, c))
    amp = rng.uniform(0.5, 1.5, (n, 1, c))
    offset = rng.uniform(-0.3, 0.3, (n, 1, c))
    p = np.arange(t, dtype=np.float64)[None, :, None] / t * cycles + phase
    x = np.empty((n, t, c), np.float64)
    for k, wave in enumerate(list(WAVES.values())[:classes]):
        idx = np.flatnonzero(y == k)
        if wave is None:
            x[idx] = _smooth_noise(rng, len(idx), t, c)
        else:
            x[idx] = wave(p[idx])
    x = amp * x + offset + noise * rng.standard_normal((n, t, c))
    return x.astype(np.float32), y


def _smooth_noise(rng, n: int, t: int, c: int) -> np.ndarray:
    """Random noise through a moving average of about a tenth of the window, rescaled to
    unit standard deviation, so its amplitude matches the waveforms'."""
    width = max(2, t // 10)
    raw = rng.standard_normal((n, t + width - 1, c))
    csum = np.cumsum(raw, axis=1)
    csum = np.concatenate([np.zeros((n, 1, c)), csum], axis=1)
    smooth = (csum[:, width:] - csum[:, :-width]) / width
    return smooth / np.maximum(smooth.std(axis=1, keepdims=True), 1e-6)
