"""How long one training step will take, said before the first one: from the network's
MACs and this device's measured matmul rate. A big network at full resolution on a CPU
can take minutes to its first step; the person should know that up front."""
from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass

# Below this many FLOPs per step no estimate is made (and no matmul is timed): such a step
# takes well under a second on any device.
QUIET_FLOPS = 2e10
# Estimates at or above this many seconds per step are said.
SLOW_STEP_S = 1.0
# The input side a slow image network is suggested to train at first.
SMALL_SIDE = 64


@dataclass(frozen=True)
class StepEstimate:
    flops: float        # per training step: forward and backward, 3 × 2 × MACs × batch
    rate: float         # FLOP/s measured on a matmul on this device
    device: str

    @property
    def seconds(self) -> float:
        return self.flops / self.rate


def train_flops(macs_per_example: int, batch_size: int) -> float:
    """FLOPs of one training step: a MAC is 2 FLOPs, and the backward pass costs about
    twice the forward."""
    return 3 * 2 * macs_per_example * batch_size


def matmul_peak(n: int = 2048, dtype=None, reps: int = 5) -> float:
    """FLOP/s of an n×n×n matmul (median of `reps`, after a compile-and-warm-up call)."""
    import jax
    import jax.numpy as jnp

    dtype = dtype or jnp.float32
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (n, n), dtype)
    b = jax.random.normal(k2, (n, n), dtype)
    f = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    f(a, b).block_until_ready()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / statistics.median(times)


@functools.lru_cache(maxsize=1)
def matmul_rate() -> float:
    """FLOP/s of a 1024² float32 matmul on the default device, once per process: an upper
    bound on what convolutions reach, so estimates from it are optimistic."""
    return matmul_peak(1024, reps=3)


def estimate_step(macs_per_example: int, batch_size: int) -> StepEstimate | None:
    """The estimate for a step big enough to be worth one, else None."""
    import jax

    flops = train_flops(macs_per_example, batch_size)
    if flops < QUIET_FLOPS:
        return None
    return StepEstimate(flops, matmul_rate(), jax.default_backend())


def smaller_input(shape: tuple) -> tuple | None:
    """An image input shape with both sides cut to SMALL_SIDE, or None when it is small
    already (or not an image)."""
    if len(shape) != 3 or min(shape[:2]) <= SMALL_SIDE:
        return None
    return (SMALL_SIDE, SMALL_SIDE, shape[2])
