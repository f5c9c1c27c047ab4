"""One epoch of training, several steps per dispatch.

Batches are grouped into chunks of k (step.make_multi_step runs a chunk as one `lax.scan`).
A small in-memory train split stays on the devices (engine/resident.py) and a chunk travels
as its examples' indices; otherwise batches are gathered, stacked and copied to the device
on the prefetch thread. The host reads each chunk's metrics and health one dispatch behind,
so it never waits on the device except where a checkpoint is written: the monitor still
sees every step, only later.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import jax
import numpy as np

from archspec.data import Stream, batch_indices, prefetch
from archspec.engine.resident import ResidentSplit
from archspec.engine.step import chunk_sharding, pad_batch, pad_indices, put_batch, shardings

AUTO_MAX = 16  # steps per dispatch that `auto` chooses for a cheap model
# A step below this many FLOPs (forward and backward) costs less device time than the
# host time of dispatching it and reading its results (~0.1-0.5 ms): batch it with others.
CHEAP_STEP_FLOPS = {"cpu": 2e9}
CHEAP_STEP_FLOPS_ACCELERATOR = 2e12


def steps_per_execution(setting, graph, batch_size: int, steps_per_epoch: int,
                        platform: str, streamed: bool = False) -> int:
    """k for an experiment's `steps_per_execution`, balanced so that the chunks of an epoch
    are equal (30 steps with up to 16 per chunk: 2 chunks of 15, no idle slot). `auto` on
    streamed data is 1: decoding, not dispatch, is what such a loop waits for, and the
    batches held in memory stay bounded by the prefetch depth."""
    if setting == "auto" and streamed:
        setting = 1
    if setting == "auto":
        flops = 6 * graph.total("macs") * batch_size  # forward + two gradients, 2 FLOPs a MAC
        cheap = CHEAP_STEP_FLOPS.get(platform, CHEAP_STEP_FLOPS_ACCELERATOR)
        setting = AUTO_MAX if flops < cheap else 1
    k = max(1, min(setting, steps_per_epoch))
    return -(-steps_per_epoch // -(-steps_per_epoch // k))


@dataclass
class Chunk:
    """Up to k batches stacked along a new axis 0; slots past `reals` are zeros."""
    arrays: tuple          # (xs, ys, ws, valid), on the device once put
    reals: list[int]       # real examples of each used slot
    last: int              # the epoch's index of the chunk's last batch


def chunks(padded: Iterator, k: int, first: int, step: int, every: int | None,
           total: int) -> Iterator[Chunk]:
    """Group (*arrays, real) batches ((x, y, w), or (indices, w) on a resident split), the
    first being batch `first` of the epoch and step `step` done before it. A chunk also ends
    where a checkpoint is due (a multiple of `every`) and at `total`, so saves and the end of
    training fall on chunk boundaries."""
    group, b = [], first - 1
    for b, item in enumerate(padded, start=first):
        group.append(item)
        step += 1
        if len(group) == k or (every and step % every == 0) or step >= total:
            yield _stack(group, k, b)
            group = []
            if step >= total:
                return
    if group:
        yield _stack(group, k, b)


def _stack(group: list, k: int, last: int) -> Chunk:
    pad = k - len(group)
    arrays = []
    for i in range(len(group[0]) - 1):
        parts = [g[i] for g in group]
        parts += [np.zeros_like(parts[0])] * pad
        arrays.append(np.stack(parts))
    valid = np.array([True] * len(group) + [False] * pad)
    return Chunk((*arrays, valid), [g[-1] for g in group], last)


@dataclass
class EpochTotals:
    sums: dict = field(default_factory=dict)  # metric × real examples, summed on the host
    seen: int = 0                             # real examples trained on
    last: int = -1                            # index of the last batch trained


class EpochRunner:
    """Runs the chunks of one epoch through `multi_step`, feeding the monitor and the
    reporter one dispatch behind, and asking `checkpoint(state, position)` to save where
    one is due."""

    def __init__(self, setup, multi_step, monitor, reporter, k: int):
        self.setup, self.multi_step, self.k = setup, multi_step, k
        self.monitor, self.reporter = monitor, reporter
        self.data_sh, self.repl = chunk_sharding(setup.mesh), shardings(setup.mesh)[1]
        self.pending, self.step = None, 0  # step: the last one dispatched
        exp = setup.exp
        self.stream = Stream(setup.dataset.train, exp.batch_size, seed=exp.seed,
                             epochs=-(-setup.total_steps // setup.steps_per_epoch),
                             workers=exp.data.workers)
        self.resident = ResidentSplit.of(setup.dataset.train, self.repl, self.data_sh)

    def close(self) -> None:
        self.stream.close()

    def batches(self, epoch: int, skip: int, step: int) -> Iterator[Chunk]:
        exp, bs = self.setup.exp, self.setup.exp.batch_size
        if self.resident is not None:  # the same batches as the stream's, by index
            idx = batch_indices(len(self.setup.dataset.train), bs, seed=exp.seed,
                                epoch=epoch, start=skip)
            padded = ((*pad_indices(i, bs), len(i)) for i in idx)
        else:
            padded = ((*pad_batch(x, y, bs), len(x)) for x, y in self.stream.epoch(epoch, skip))
        grouped = chunks(padded, self.k, skip, step, exp.checkpoint.every_steps,
                         self.setup.total_steps)
        if self.resident is not None:  # placing a chunk is a gather dispatched, no thread
            return (Chunk(self.resident.place(*c.arrays), c.reals, c.last) for c in grouped)
        return prefetch(grouped, 2, put=self._put)

    def _put(self, chunk: Chunk) -> Chunk:
        xs, ys, ws, valid = chunk.arrays
        placed = (*put_batch((xs, ys, ws), self.data_sh, axis=1),
                  jax.device_put(valid, self.repl))
        return Chunk(placed, chunk.reals, chunk.last)

    def run(self, state, epoch: int, skip: int, step: int, stop, checkpoint):
        """Train epoch `epoch` from batch `skip`; returns (state, step, totals)."""
        totals, t0 = EpochTotals(last=skip - 1), time.perf_counter()
        it = self.batches(epoch, skip, step)
        try:
            for chunk in it:
                state, sums, health = self.multi_step(state, *chunk.arrays)
                self._observe(totals, epoch, t0)
                self.pending = (step, chunk.reals, sums, health)
                step += len(chunk.reals)
                self.step = step
                totals.last = chunk.last
                if stop() or step >= self.setup.total_steps:
                    break
                if checkpoint.due(step) and chunk.last + 1 < self.setup.steps_per_epoch:
                    self._observe(totals, epoch, t0)
                    checkpoint.save(state, {"epoch": epoch, "batch": chunk.last + 1})
        finally:
            it.close()
        self._observe(totals, epoch, t0)
        return state, step, totals

    def _observe(self, totals: EpochTotals, epoch: int, t0: float) -> None:
        """Check the previous chunk's steps (waiting for it, while the next one runs)."""
        if self.pending is None:
            return
        first, reals, sums, health = self.pending
        self.pending = None
        sums, health = jax.device_get((sums, health))
        for i in range(len(reals)):
            self.monitor.observe(first + i + 1, {k: v[i] for k, v in health.items()})
        for k, v in sums.items():
            totals.sums[k] = totals.sums.get(k, 0.0) + float(v)
        totals.seen += sum(reals)
        step = first + len(reals)
        self.reporter.step(step, epoch, {"loss": float(health["loss"][len(reals) - 1])},
                           totals.seen / (time.perf_counter() - t0))


class CheckpointPolicy:
    """When `latest` is written: every `every_steps` steps and every `every_minutes`
    minutes (checked at chunk boundaries); the loop adds the end of training and a stop.
    When `best` is written: at once, unless a best was written less than
    `best_every_minutes` ago; then the new best is held in host memory (a later one replaces
    it) and written once due, at the end of training, on a stop and before the test. A run
    of tiny epochs that improves at most of them writes a few bests, not hundreds."""

    def __init__(self, store, config):
        self.store, self.every, self.seconds = store, config.every_steps, config.every_minutes * 60
        self.last = time.monotonic()
        self.best_seconds, self.best_at, self.held = config.best_every_minutes * 60, None, None

    def best(self, state, position: dict, then=None) -> None:
        """A new best. Several processes write each one at once: their shards are not all
        on one host, so none is held."""
        if self.best_at is not None and time.monotonic() - self.best_at < self.best_seconds \
                and jax.process_count() == 1:
            self.held = (jax.device_get(state), position, then)  # the step donates `state`
            return
        self.held, self.best_at = None, time.monotonic()
        self.store.save("best", state, position, then=then)

    def write_held(self, force: bool = False) -> None:
        """Write the best held back, when due (or `force`: the end, a stop, closing)."""
        if self.held is None or not (force or time.monotonic() - self.best_at >= self.best_seconds):
            return
        (state, position, then), self.held = self.held, None
        self.best_at = time.monotonic()
        self.store.save("best", state, position, then=then)

    def due(self, step: int) -> bool:
        return bool(self.every and step % self.every == 0) or \
            time.monotonic() - self.last >= self.seconds

    def save(self, state, position: dict, which: str = "latest", then=None) -> None:
        self.store.save(which, state, position, then=then)
        if which == "latest":
            self.last = time.monotonic()
