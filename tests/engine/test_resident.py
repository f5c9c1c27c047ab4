"""A small in-memory train split stays on the devices (engine/resident.py): its chunks are
gathered there from indices, and must be exactly the chunks the host would have gathered,
padded and stacked."""
from __future__ import annotations

import numpy as np
import pytest


def _host_and_resident_chunks(split, bs, k, seed, epoch, start):
    from archspec.data import batch_indices, batches
    from archspec.engine.epoch import chunks
    from archspec.engine.resident import ResidentSplit
    from archspec.engine.step import chunk_sharding, make_mesh, pad_batch, pad_indices, shardings

    mesh = make_mesh()
    host = chunks(((*pad_batch(x, y, bs), len(x)) for x, y in
                   batches(split, bs, shuffle=True, seed=seed, epoch=epoch, start=start)),
                  k, start, 0, None, 10**6)
    resident = ResidentSplit.of(split, shardings(mesh)[1], chunk_sharding(mesh))
    assert resident is not None
    kept = chunks(((*pad_indices(i, bs), len(i)) for i in
                   batch_indices(len(split), bs, seed=seed, epoch=epoch, start=start)),
                  k, start, 0, None, 10**6)
    return list(host), [(resident.place(*c.arrays), c) for c in kept]


@pytest.mark.parametrize("start", [0, 2])
def test_a_resident_split_gathers_the_batches_the_host_would(start):
    """23 examples in batches of 4 (the last one partial, padded), chunks of 3 slots, from
    batch `start` (a resume mid-epoch): every real slot holds the same examples, labels and
    weights, and the chunks' slot counts and last batches agree."""
    from archspec.data import Split

    rng = np.random.default_rng(0)
    split = Split(rng.normal(size=(23, 5)).astype(np.float32),
                  rng.integers(0, 3, size=23).astype(np.int32))
    host, kept = _host_and_resident_chunks(split, 4, 3, seed=7, epoch=2, start=start)
    assert len(host) == len(kept) == -(-(6 - start) // 3)
    for h, (placed, c) in zip(host, kept):
        assert (h.reals, h.last) == (c.reals, c.last)
        xs, ys, ws, valid = (np.asarray(a) for a in placed)
        np.testing.assert_array_equal(valid, h.arrays[3])
        for got, want in zip((xs, ys, ws), h.arrays[:3]):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got[valid], want[valid])
    assert host[-1].reals[-1] == 3  # the partial batch is there, padded with weight 0
    np.testing.assert_array_equal(np.asarray(kept[-1][0][2])[len(host[-1].reals) - 1],
                                  [1, 1, 1, 0])


def test_a_split_over_the_limit_or_streamed_is_not_kept(monkeypatch):
    from archspec.data import Split
    from archspec.data.lazy import LazyExamples
    from archspec.engine.measure import KeptSplit
    from archspec.engine.resident import ResidentSplit
    from archspec.engine.step import chunk_sharding, make_mesh, shardings

    mesh = make_mesh()
    sh = (shardings(mesh)[1], chunk_sharding(mesh))
    split = Split(np.zeros((100, 10), np.float32), np.zeros(100, np.int32))
    assert ResidentSplit.of(split, *sh) is not None
    monkeypatch.setattr(KeptSplit, "LIMIT", split.x.nbytes)  # x and y: over by y's bytes
    assert ResidentSplit.of(split, *sh) is None
    monkeypatch.undo()
    streamed = Split(LazyExamples(list(range(100)), lambda r: np.zeros(10, np.float32), (10,)),
                     split.y)
    assert ResidentSplit.of(streamed, *sh) is None
