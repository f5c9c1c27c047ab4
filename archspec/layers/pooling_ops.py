"""The array side of pooling, with PyTorch's semantics for ceil mode and average padding."""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

# Max/min windows are the extreme of one strided view of the (padded) input per window
# offset, with a gradient that pads each offset's share back into place: elementwise work
# XLA fuses. reduce_window's select_and_scatter gradient took 7-8× as long on XLA:CPU
# (8×112×112×64, 3×3/2: 110 ms against 14 ms), and a reshape-and-reduce of non-overlapping
# blocks 5-9× (2×2/2). Non-overlapping average windows (stride == size, no padding, no ceil
# extra) are a reshape and a sum. False: reduce_window everywhere (benchmarks and tests
# compare the lowerings).
FAST_POOLS = True
# Export (archspec export --format onnx): windowed pools reduce over (N·C, *spatial), the
# rank ONNX Runtime's MaxPool and AveragePool take (a window over all four NHWC axes is not).
MERGED_WINDOWS = False


def _reduce_window(x, init, op, dims, strides, pads):
    """lax.reduce_window over the spatial axes of (N, *spatial, C)."""
    if not MERGED_WINDOWS:
        return lax.reduce_window(x, init, op, dims, strides, pads)
    n, *spatial, c = x.shape
    y = jnp.moveaxis(x, -1, 1).reshape(-1, *spatial)
    y = lax.reduce_window(y, init, op, (1, *dims[1:-1]), (1, *strides[1:-1]),
                          [(0, 0), *pads[1:-1]])
    return jnp.moveaxis(y.reshape(n, c, *y.shape[1:]), 1, -1)


def _blocks(x, k, out):
    """(N, *spatial, C) -> (N, o1, k1, o2, k2, ..., C), dropping the rows a floor-mode
    pool never reads; window axes are 2, 4, ..."""
    x = x[(slice(None), *(slice(0, o * kk) for o, kk in zip(out, k)))]
    return x.reshape(x.shape[0], *(d for o, kk in zip(out, k) for d in (o, kk)), x.shape[-1])


def _views(xp, k, s, out):
    """(offset, strided view) for each window offset in row-major order: the view holds
    that offset's element of every window, (N, *out, C)."""
    for off in itertools.product(*(range(kk) for kk in k)):
        limit = (xp.shape[0], *(o0 + (o - 1) * ss + 1 for o0, o, ss in zip(off, out, s)),
                 xp.shape[-1])
        yield off, lax.slice(xp, (0, *off, 0), limit, (1, *s, 1))


def _padded(x, full, is_max):
    fill = jnp.asarray(-jnp.inf if is_max else jnp.inf, x.dtype)
    return lax.pad(x, fill, [(lo, hi, 0) for lo, hi in full])


def _window(x, k, s, full, out, is_max):
    return _window_and_choice(x, k, s, full, out, is_max)[0]


def _window_and_choice(x, k, s, full, out, is_max):
    """The extreme of each window and which window offset holds it: the first extreme in
    row-major window order (a later offset wins only when strictly beyond), as
    select_and_scatter chooses."""
    pick, beyond = (jnp.maximum, lax.gt) if is_max else (jnp.minimum, lax.lt)
    kind = jnp.int8 if math.prod(k) <= 127 else jnp.int32  # the residual kept per window
    y = choice = None
    for i, (_, v) in enumerate(_views(_padded(x, full, is_max), k, s, out)):
        if y is None:
            y, choice = v, jnp.zeros(v.shape, kind)
            continue
        choice = jnp.where(beyond(v, y), jnp.asarray(i, choice.dtype), choice)
        y = pick(y, v)  # NaN-propagating, as reduce_window's max
    return y, choice


def _window_fwd(x, k, s, full, out, is_max):
    y, choice = _window_and_choice(x, k, s, full, out, is_max)
    return y, (choice, x.shape)


def _window_bwd(k, s, full, out, is_max, res, g):
    """Each window's gradient goes to the element the forward pass chose. The choice is
    kept from the forward pass, not found again by comparing values: XLA may recompute the
    pooled input in another fusion, rounded differently, and a comparison of the two then
    drops the gradient of the windows whose values no longer match (measured: 32% of a
    network's input gradient lost under jit). An element in several windows sums their
    shares (in another order: equal to rounding)."""
    choice, shape = res
    padded = [d + lo + hi for d, (lo, hi) in zip(shape, full)]
    zero = jnp.zeros((), g.dtype)
    dxp = None
    for i, off in enumerate(itertools.product(*(range(kk) for kk in k))):
        # the view's elements sit at off + s*i of the padded input: pad them back there
        spatial = [(o0, n - o0 - (o - 1) * ss - 1, ss - 1)
                   for o0, n, o, ss in zip(off, padded[1:-1], out, s)]
        where = [(0, 0, 0), *spatial, (0, 0, 0)]
        placed = lax.pad(jnp.where(choice == i, g, zero), zero, where)
        dxp = placed if dxp is None else dxp + placed
    return (lax.slice(dxp, tuple(lo for lo, _ in full),
                      tuple(lo + d for (lo, _), d in zip(full, shape))),)


_window_extreme = jax.custom_vjp(_window, nondiff_argnums=(1, 2, 3, 4, 5))
_window_extreme.defvjp(_window_fwd, _window_bwd)


def block_pool(x, op, k, out_spatial):
    """Non-overlapping windowed pool (stride == size, no padding). Max/min: the values and
    the gradient of `reduce_window` exactly (a tie gives the whole gradient to the first
    extreme element in row-major window order, as select_and_scatter does). Avg: sum over
    the window divided by its size, as `reduce_window` does (equal up to summation order)."""
    k, out = tuple(k), tuple(out_spatial)
    if op in ("max", "min"):  # the window lowering: no window overlaps, so no reordered sum
        return _window_extreme(x, k, k, ((0, 0),) * x.ndim, out, op == "max")
    axes = tuple(2 + 2 * i for i in range(len(k)))
    count = 1
    for kk in k:
        count *= kk
    return _blocks(x, k, out).sum(axis=axes) / jnp.asarray(count, x.dtype)


def window_pool(x, op, k, s, pads, out_spatial, count_pad=True):
    """Windowed pool. Ceil mode is extra high-side padding that never counts as data:
    max/min ignore it; avg divides by the number of window positions on the input or its
    explicit padding (`count_pad`, PyTorch's count_include_pad=True), or with
    `count_pad=False` by the number of input values in the window (PyTorch's
    count_include_pad=False, TensorFlow's 'same')."""
    extra = [max((o - 1) * ss + kk - (size + lo + hi), 0)
             for o, ss, kk, size, (lo, hi) in zip(out_spatial, s, k, x.shape[1:-1], pads)]
    if (FAST_POOLS and tuple(k) == tuple(s) and not any(extra)
            and all(lo == 0 and hi == 0 for lo, hi in pads)):
        return block_pool(x, op, k, out_spatial)
    full = [(0, 0)] + [(lo, hi + e) for (lo, hi), e in zip(pads, extra)] + [(0, 0)]
    if FAST_POOLS and op in ("max", "min"):
        return _window_extreme(x, tuple(k), tuple(s), tuple(full), tuple(out_spatial),
                               op == "max")
    dims, strides = (1, *k, 1), (1, *s, 1)
    if op == "max":
        return _reduce_window(x, -jnp.inf, lax.max, dims, strides, full)
    if op == "min":
        return _reduce_window(x, jnp.inf, lax.min, dims, strides, full)
    total = _reduce_window(x, 0.0, lax.add, dims, strides, full)
    ones = jnp.ones((1, *x.shape[1:-1], 1), x.dtype)
    if count_pad:  # explicit padding counts; the ceil-mode extra never does
        ones = jnp.pad(ones, [(0, 0)] + list(pads) + [(0, 0)], constant_values=1.0)
        count = _reduce_window(ones, 0.0, lax.add, dims, strides,
                                  [(0, 0)] + [(0, e) for e in extra] + [(0, 0)])
    else:  # only the input values in each window count
        count = _reduce_window(ones, 0.0, lax.add, dims, strides, full)
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
