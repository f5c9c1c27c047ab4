"""Seeded mini-batches, and how many there are per epoch.

`batches` gathers them with NumPy (a lazy split, data/lazy.py: decodes them) on the
caller's thread, the prefetch thread in training. `Stream` can instead decode a lazy
train split in grain worker processes: batch b of epoch e is one random-access element of
a MapDataset, so workers decode batches in parallel and the order stays a pure function
of (seed, e, b)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache, partial

import numpy as np

from .dataset import Split
from .lazy import is_lazy
from .seeding import rng_for


def batches(split: Split, batch_size: int, *, shuffle: bool, seed: int, epoch: int,
            drop_last: bool = False, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) batches covering the split once, from batch `start` on, gathered (a
    lazy split: decoded) on the caller's thread.

    The order is a pure function of (seed, epoch), not of any state carried between
    epochs, so a run resumed at epoch k, batch b sees exactly the batches it would have
    seen. The last, smaller batch is kept unless `drop_last`. (Stream decodes a lazy train
    split in grain worker processes.)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(split.y)
    order = _order(seed, epoch, n) if shuffle else None
    for b in range(start, steps_per_epoch(n, batch_size, drop_last)):
        yield _gather(split, order, batch_size, b)


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int,
                  start: int = 0) -> Iterator[np.ndarray]:
    """The example indices of each batch `batches(split of n, shuffle=True)` yields, from
    batch `start` on: for a split whose examples are gathered elsewhere (on the devices)."""
    order = _order(seed, epoch, n)
    for b in range(start, steps_per_epoch(n, batch_size, False)):
        yield order[_span(b, batch_size, n)]


class Stream:
    """The train split's batches, epoch after epoch, for one run.

    `epoch(e, start)` yields exactly what `batches(..., epoch=e, start=start)` yields. With
    grain workers (a lazy split, `workers` > 0) every epoch comes from one pipeline over
    the whole run, so its worker processes start once instead of once per epoch (~1.5 s
    before each epoch's first batch, benchmarks/pipeline_vs_torch.py). A request that does
    not continue where the previous one stopped (a resume, an epoch cut short) starts the
    pipeline again from there. `close()` stops the workers."""

    def __init__(self, split: Split, batch_size: int, *, seed: int, epochs: int,
                 workers: int = 0):
        self.split, self.batch_size, self.seed, self.workers = split, batch_size, seed, workers
        self.epochs, self.count = epochs, steps_per_epoch(len(split.y), batch_size, False)
        self._it, self._next = None, None  # the run-long iterator and its next element

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if not (is_lazy(self.split.x) and self.workers > 0):
            yield from batches(self.split, self.batch_size, shuffle=True, seed=self.seed,
                               epoch=epoch, start=start)
            return
        k = epoch * self.count + start
        if self._next != k:
            self.close()
            gather = partial(_gather_at, self.split, self.seed, self.batch_size, self.count)
            self._it = _pipeline(gather, range(k, self.epochs * self.count), self.workers)
            self._next = k
        for _ in range(start, self.count):
            item = next(self._it)
            self._next += 1
            yield item

    def close(self) -> None:
        if self._it is not None:
            self._it.close()
        self._it, self._next = None, None


def _gather_at(split: Split, seed: int, batch_size: int, count: int, k: int):
    """Element k of a run-long stream: batch k % count of epoch k // count."""
    epoch, b = divmod(k, count)
    return _gather(split, _order(seed, epoch, len(split.y)), batch_size, b)


@lru_cache(maxsize=2)  # per worker process: one permutation per epoch, not per batch
def _order(seed: int, epoch: int, n: int) -> np.ndarray:
    return rng_for(seed, "batches", epoch).permutation(n)


def _span(b: int, batch_size: int, n: int) -> slice:
    """The positions in an epoch's order of batch b's examples."""
    return slice(b * batch_size, min((b + 1) * batch_size, n))


def _gather(split: Split, order, batch_size: int, b: int):
    span = _span(b, batch_size, len(split.y))
    if order is None:
        return split.x[span], split.y[span]
    idx = order[span]
    return split.x[idx], split.y[idx]


def _pipeline(gather, which: range, workers: int):
    """grain worker processes computing gather(k) for k in `which`, in order."""
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain reads absl flags; archspec has its own CLI
        flags.FLAGS.mark_as_parsed()
    # grain's defaults read 500 elements ahead on 16 threads; here an element is a whole
    # batch, so each worker holds at most 2: memory is bounded by the depth, whatever
    # the data set's size.
    ds = grain.MapDataset.range(which.start, which.stop).map(gather).to_iter_dataset(
        grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
    # Batches come back pickled, not through shared memory: a segment a worker made for a
    # batch the run never took (a stop, an error, an epoch cut short) was never unlinked
    # ("leaked shared_memory objects" at exit, and /dev/shm filling over many runs).
    ds = grain.experimental.WithOptionsIterDataset(
        ds, grain.experimental.DatasetOptions(min_shm_size=2**62))
    options = grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2)
    return iter(ds.mp_prefetch(options))  # its close() stops the worker processes


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)
