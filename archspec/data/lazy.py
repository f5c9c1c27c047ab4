"""Examples decoded when they are read, so a data set larger than memory can train.

A `LazyExamples` looks like the (N, *shape) array the rest of archspec expects (`shape`,
`dtype`, `len`, indexing returns a NumPy array) but holds only a list of records and a
function that decodes one. The steps an in-memory array goes through in the loader
(fitting to the input shape, normalisation) are recorded and replayed on every batch,
so a lazy split yields exactly the values the eager path computes.

It is picklable (module-level functions and plain data), which lets grain's worker
processes decode batches in parallel (data/batching.py).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..fmt import BYTES_PER_VALUE, prod
from .passes import tracked

MEMORY_BUDGET = 1 << 30  # bytes of decoded float32 examples kept in memory ("auto" mode)
STATS_PASS = "normalisation statistics"  # what the progress of that pass is called


@dataclass(frozen=True)
class LazyExamples:
    records: Sequence            # what `decode` reads, one per example (e.g. a path)
    decode: Callable             # record -> one example (NumPy, the source's own shape)
    example_shape: tuple         # the shape after `steps`
    index: np.ndarray | None = None   # which records, in order (None: all)
    steps: tuple = field(default=())  # batch -> batch, replayed after decoding
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple:
        return (len(self), *self.example_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.example_shape)

    def __len__(self) -> int:
        return len(self.records) if self.index is None else len(self.index)

    def take(self, idx) -> LazyExamples:
        """The examples at `idx`, still undecoded (how splits are made)."""
        base = np.arange(len(self.records)) if self.index is None else self.index
        return replace(self, index=base[np.asarray(idx, dtype=np.int64)])

    def then(self, step: Callable, example_shape: tuple | None = None, dtype=None) -> LazyExamples:
        """Record a batch transformation (applied after decoding, in order)."""
        return replace(self, steps=self.steps + (step,),
                       example_shape=tuple(example_shape or self.example_shape),
                       dtype=np.dtype(dtype or self.dtype))

    def __getitem__(self, key) -> np.ndarray:
        rows = np.arange(len(self))[key]
        if np.ndim(rows) == 0:
            return self._decode(np.array([rows]))[0]
        return self._decode(rows)

    def _decode(self, rows: np.ndarray) -> np.ndarray:
        ids = rows if self.index is None else self.index[rows]
        if len(ids) == 0:
            return np.zeros((0, *self.example_shape), self.dtype)
        batch = np.stack([self.decode(self.records[int(i)]) for i in ids])
        for step in self.steps:
            batch = step(batch)
        return batch

    def chunks(self, size: int = 64):
        """Decoded blocks of consecutive examples, for one pass over all of them."""
        for start in range(0, len(self), size):
            yield self[start:start + size]


def is_lazy(x) -> bool:
    return isinstance(x, LazyExamples)


def decoded_bytes(n: int, example_shape: Sequence[int]) -> int:
    return int(n) * prod(example_shape) * BYTES_PER_VALUE


def mean_std_streaming(x: LazyExamples) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std in one pass, merging per-chunk statistics
    with Chan et al.'s update: float64 and no E[x^2] - E[x]^2 cancellation, so it agrees
    with the two-pass in-memory result to rounding."""
    count, mean, m2 = 0, None, None
    for chunk in tracked(x.chunks(), STATS_PASS, len(x), len):
        rows = chunk.reshape(-1, chunk.shape[-1]).astype(np.float64)
        n, mu = len(rows), rows.mean(0)
        ss = ((rows - mu) ** 2).sum(0)
        if mean is None:
            count, mean, m2 = n, mu, ss
            continue
        delta, total = mu - mean, count + n
        mean = mean + delta * n / total
        m2 = m2 + ss + delta ** 2 * count * n / total
        count = total
    return mean, np.sqrt(m2 / max(count, 1))


def min_max_streaming(x: LazyExamples) -> tuple[np.ndarray, np.ndarray]:
    lo = hi = None
    for chunk in tracked(x.chunks(), STATS_PASS, len(x), len):
        rows = chunk.reshape(-1, chunk.shape[-1])
        lo = rows.min(0) if lo is None else np.minimum(lo, rows.min(0))
        hi = rows.max(0) if hi is None else np.maximum(hi, rows.max(0))
    return lo, hi
