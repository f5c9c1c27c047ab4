"""Seeded mini-batches, and how many there are per epoch.

In-memory splits are gathered with NumPy on the caller's (prefetch) thread. Lazy splits
(data/lazy.py: images decoded when read) go through grain: batch b of the epoch is one
random-access element of a MapDataset, so worker processes decode batches in parallel
and the order stays a pure function of (seed, epoch, b)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial

import numpy as np

from .dataset import Split
from .lazy import is_lazy
from .seeding import rng_for


def batches(split: Split, batch_size: int, *, shuffle: bool, seed: int, epoch: int,
            drop_last: bool = False, start: int = 0,
            workers: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) batches covering the split once, from batch `start` on.

    The order is a pure function of (seed, epoch), not of any state carried between
    epochs, so a run resumed at epoch k, batch b sees exactly the batches it would have
    seen. The last, smaller batch is kept unless `drop_last`. `workers`: grain processes
    that decode a lazy split (0: decode here, on the caller's prefetch thread).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(split.y)
    order = rng_for(seed, "batches", epoch).permutation(n) if shuffle else None
    count = steps_per_epoch(n, batch_size, drop_last)
    gather = partial(_gather, split, order, batch_size)
    if is_lazy(split.x):
        yield from _streamed(gather, range(start, count), workers)
        return
    for b in range(start, count):
        yield gather(b)


def _gather(split: Split, order, batch_size: int, b: int):
    lo, hi = b * batch_size, min((b + 1) * batch_size, len(split.y))
    if order is None:
        return split.x[lo:hi], split.y[lo:hi]
    idx = order[lo:hi]
    return split.x[idx], split.y[idx]


def _streamed(gather, which: range, workers: int):
    if workers < 1:  # decode on the caller's (prefetch) thread: one batch at a time
        yield from map(gather, which)
        return
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain reads absl flags; archspec has its own CLI
        flags.FLAGS.mark_as_parsed()
    # grain's defaults read 500 elements ahead on 16 threads; here an element is a whole
    # batch, so each worker holds at most 2: memory is bounded by the depth, whatever
    # the data set's size.
    ds = grain.MapDataset.source(list(which)).map(gather).to_iter_dataset(
        grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
    options = grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2)
    yield from ds.mp_prefetch(options)


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)
