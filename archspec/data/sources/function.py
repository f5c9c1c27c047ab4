"""Regression on a known function, to watch a network approximate it.

For d input features the target is applied to their sum: y = f(x_1 + ... + x_d). With
one feature that is plain y = f(x); with more it is a ridge function, still learnable,
and the sum keeps every feature relevant. y has shape (N, 1).
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for

TARGETS = {
    "sin": np.sin,
    "cos": np.cos,
    "sinc": lambda s: np.sinc(s / np.pi),  # sin(s)/s, 1 at s = 0
    "square": np.square,
    "abs": np.abs,
    "gaussian": lambda s: np.exp(-0.5 * s * s),
}


class Options(SourceOptions):
    target: Literal["sin", "cos", "sinc", "square", "abs", "gaussian"] = Field(
        "sin", description="f in y = f(x_1 + ... + x_d)")
    n: int = Field(2000, ge=1, description="number of examples")
    low: float = Field(-math.pi, description="inputs are drawn uniformly from [low, high)")
    high: float = math.pi
    noise: float = Field(0.0, ge=0, description="std of Gaussian noise added to y")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    features = _features(input_shape)
    if options.high <= options.low:
        raise DataError(f"function inputs need low < high, got low={options.low} "
                        f"high={options.high}", option="high")
    n = min(options.n, cfg.limit or options.n)
    rng = rng_for(seed, "function")
    x = rng.uniform(options.low, options.high, size=(n, features))
    y = TARGETS[options.target](x.sum(axis=1, keepdims=True))
    y = y + options.noise * rng.standard_normal(y.shape)
    return Raw(x.astype(np.float32), y.astype(np.float32), "regression", None, None,
               f"function:{options.target}")


def _features(input_shape) -> int:
    if input_shape is None:
        return 1
    if len(input_shape) != 1:
        raise DataError(f"the function dataset makes flat feature vectors, but the "
                        f"architecture's input shape is {tuple(input_shape)}",
                        hint="use an input shape of one axis, e.g. [1] or [2]")
    return int(input_shape[0])
