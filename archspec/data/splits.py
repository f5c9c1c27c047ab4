"""Seeded train/val/test splitting, including the `limit` on examples."""
from __future__ import annotations

import numpy as np

from .dataset import Raw
from .errors import DataError
from .seeding import rng_for


def split_indices(raw: Raw, val_fraction: float, test_fraction: float, limit: int | None,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test). With a pre-made test split the test indices
    point into raw.test; otherwise all three point into raw.x."""
    rng = rng_for(seed, "split")
    order = rng.permutation(len(raw.y))
    if raw.test is None:
        if limit is not None:
            order = order[:limit]
        n_test = _count(len(order), test_fraction)
        n_val = _count(len(order), val_fraction)
        test, val, train = np.split(order, [n_test, n_test + n_val])
        _require(len(test), "test", len(order), test_fraction, raw.source)
    else:
        test = rng.permutation(len(raw.test[1]))
        if limit is not None:
            test = test[:max(1, _count(limit, test_fraction))]
            order = order[:max(0, limit - len(test))]
        n_val = _count(len(order), val_fraction)
        val, train = np.split(order, [n_val])
        _require(len(test), "test", len(raw.test[1]), None, raw.source)
    if val_fraction > 0:  # val_fraction 0: train on every example, no val split
        _require(len(val), "val", len(order), val_fraction, raw.source)
    _require(len(train), "train", len(order), None, raw.source)
    return train, val, test  # kept in shuffled order: class-sorted sources stay mixed


def _count(n: int, fraction: float) -> int:
    return int(n * fraction + 0.5)


def _require(size: int, split: str, n: int, fraction: float | None, source: str) -> None:
    if size:
        return
    if fraction is None:
        message = f"the {split} split is empty ({n} examples left for it)"
        hint = "lower val_fraction/test_fraction, raise `limit`, or add data"
    else:
        message = (f"the {split} split is empty: {n} examples x {split}_fraction "
                   f"{fraction} rounds to 0")
        hint = (f"raise {split}_fraction to at least {1 / max(n, 1):.3g}, raise `limit`, "
                "or add data")
    raise DataError(message, file=source, hint=hint)
