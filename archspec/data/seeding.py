"""Independent random streams from one user seed.

Each use (splitting, batching, each generator) gets its own stream, so e.g. the shapes
generator and the split shuffle never draw the same numbers from the same seed.
"""
from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, purpose: str, *more: int) -> np.random.Generator:
    words = [int(seed) % 2**64, zlib.crc32(purpose.encode()), *(int(m) % 2**64 for m in more)]
    return np.random.default_rng(words)
