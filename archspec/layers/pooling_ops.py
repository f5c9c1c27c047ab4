"""The array side of pooling, with PyTorch's semantics for ceil mode and average padding."""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def window_pool(x, op, k, s, pads, out_spatial):
    """Windowed pool. Ceil mode is extra high-side padding that never counts as data:
    max/min ignore it; avg divides by the explicit-padding-inclusive count
    (count_include_pad, like PyTorch)."""
    extra = [max((o - 1) * ss + kk - (size + lo + hi), 0)
             for o, ss, kk, size, (lo, hi) in zip(out_spatial, s, k, x.shape[1:-1], pads)]
    full = [(0, 0)] + [(lo, hi + e) for (lo, hi), e in zip(pads, extra)] + [(0, 0)]
    dims, strides = (1, *k, 1), (1, *s, 1)
    if op == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, full)
    if op == "min":
        return lax.reduce_window(x, jnp.inf, lax.min, dims, strides, full)
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, full)
    ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
    ones = jnp.pad(ones, [(0, 0)] + list(pads) + [(0, 0)], constant_values=1.0)
    count = lax.reduce_window(ones, 0.0, lax.add, dims, strides,
                              [(0, 0)] + [(0, e) for e in extra] + [(0, 0)])
    return total / count


def _reduce(x, op, axes, keepdims):
    fn = {"max": jnp.max, "min": jnp.min, "avg": jnp.mean}[op]
    return fn(x, axis=axes, keepdims=keepdims)


def global_pool(x, op, keepdims):
    return _reduce(x, op, tuple(range(1, x.ndim - 1)), keepdims)


def adaptive_pool(x, op, out):
    """PyTorch's adaptive pooling: bin i covers [floor(i*n/o), ceil((i+1)*n/o))."""
    for axis, o in enumerate(out, start=1):
        n = x.shape[axis]
        if n == o:
            continue
        if n % o == 0:  # equal bins: one reshape, no gather
            shape = x.shape[:axis] + (o, n // o) + x.shape[axis + 1:]
            x = _reduce(x.reshape(shape), op, axis + 1, False)
            continue
        parts = [_reduce(lax.slice_in_dim(x, (i * n) // o, -(-((i + 1) * n) // o), axis=axis),
                         op, axis, True) for i in range(o)]
        x = jnp.concatenate(parts, axis=axis)
    return x
