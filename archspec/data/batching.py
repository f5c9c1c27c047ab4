"""Seeded mini-batches, and how many there are per epoch."""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .dataset import Split
from .seeding import rng_for


def batches(split: Split, batch_size: int, *, shuffle: bool, seed: int, epoch: int,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) batches covering the split once.

    The order is a pure function of (seed, epoch), not of any state carried between
    epochs, so a run resumed at epoch k sees exactly the batches it would have seen.
    The last, smaller batch is kept unless `drop_last`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(split.y)
    order = rng_for(seed, "batches", epoch).permutation(n) if shuffle else None
    for b in range(steps_per_epoch(n, batch_size, drop_last)):
        start, stop = b * batch_size, min((b + 1) * batch_size, n)
        if order is None:
            yield split.x[start:stop], split.y[start:stop]
        else:
            idx = order[start:stop]
            yield split.x[idx], split.y[idx]


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)
