"""A training split that stays on the devices for the whole run.

A small in-memory split (measure.stays_on_device, one process) is copied to the
devices once. Each chunk then travels as its batches' example indices, and one compiled
gather picks the examples there. Without it, a prefetch thread started at every epoch
gathers, pads, stacks and copies every batch on the host: on a small network that host
work is a sizeable share of the run's CPU time, and it competes with the step for the
cores (benchmarks/README.md, "Whole runs").
"""
from __future__ import annotations

import jax
import numpy as np

from archspec.engine.measure import stays_on_device


class ResidentSplit:
    """The train split's arrays on the devices, and the gather of a chunk's batches."""

    def __init__(self, split, repl, data_sh):
        self.x, self.y = jax.device_put((split.x, split.y), repl)
        # The same examples, in the same order, as the host's x[idx]: a gather is exact.
        # One dispatch a chunk: the indices, weights and valid slots travel as its inputs.
        self.gather = jax.jit(lambda x, y, idx, ws, valid: (x[idx], y[idx], ws, valid),
                              out_shardings=(data_sh, data_sh, data_sh, repl))

    @classmethod
    def of(cls, split, repl, data_sh) -> ResidentSplit | None:
        """A resident copy of `split`, or None where it is streamed, too large, or the run
        spans several processes (each feeds its own slice of every batch)."""
        if jax.process_count() > 1 or not stays_on_device(split):
            return None
        return cls(split, repl, data_sh)

    def place(self, idx: np.ndarray, ws: np.ndarray, valid: np.ndarray) -> tuple:
        """(xs, ys, ws, valid) on the devices for a chunk given as (k, batch) indices."""
        return self.gather(self.x, self.y, idx.astype(np.int32), ws, valid)
