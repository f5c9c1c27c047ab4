"""The array side of convolution: `lax.conv_general_dilated`, with an opt-in weight-gradient
lowering for layers with a small fan-in (kernel positions × input channels <= SMALL_FAN_IN,
e.g. a 3×3 conv on an RGB image): one matmul of channels-first patches with the output
gradient, instead of XLA's convolution whose "batch" is the input channels (3) and whose
window is the whole image. The forward pass and the input gradient stay XLA's own; the weight
gradient equals jax.grad of the plain convolution up to float summation order
(tests/layers/test_pooling_ops.py).

Off by default (FAST_GRAD = False): alone, that gradient runs ~1.5-2.5x faster on this CPU
(benchmarks/conv_grad.py), but whole train steps (LeNet, the 6-conv CNN, ResNet-18) measured
no gain, within +-3% (benchmarks/README.md), so the plain lowering is kept.

Convolutions oneDNN can compute go to archspec.layers.onednn instead when that backend is
active ($ARCHSPEC_CONV_BACKEND=auto|onednn; see archspec/layers/onednn), transposed ones
(an input dilation, `lhs_dilation`) included."""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from archspec.layers import onednn
from archspec.layers.onednn import choice

FAST_GRAD = False    # True: patch-matmul weight gradients for small fan-in (see above)
SMALL_FAN_IN = 32    # measured: 3×3×3 and 3×3×1 gain, 3×3×8 and 7×7×3 lose


def _channels_last_numbers(ndim: int):
    """The dimension numbers Flax's Conv uses: (N, *spatial, C) and (*kernel, I, O)."""
    lhs = (0, ndim - 1) + tuple(range(1, ndim - 1))
    rhs = (ndim - 1, ndim - 2) + tuple(range(0, ndim - 2))
    return lax.ConvDimensionNumbers(lhs, rhs, lhs)


def _explicit(padding):
    return not isinstance(padding, str) and all(len(p) == 2 for p in padding)


def uses_patch_grad(lhs_shape, rhs_shape, padding, lhs_dilation, dimension_numbers,
                    feature_group_count=1, batch_group_count=1) -> bool:
    """Whether `conv_general_dilated` takes the patch-matmul weight gradient."""
    n = len(lhs_shape) - 2
    return (FAST_GRAD and feature_group_count == 1 and batch_group_count == 1
            and _explicit(padding) and (lhs_dilation is None or set(lhs_dilation) <= {1})
            and dimension_numbers == _channels_last_numbers(len(lhs_shape))
            and math.prod(rhs_shape[:n]) * rhs_shape[n] <= SMALL_FAN_IN)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None,
                         in_loop: bool = False):
    """Drop-in for `lax.conv_general_dilated` (Flax's `Conv(conv_general_dilated=...)`).

    `in_loop`: the convolution is traced inside a loop body (the scan over a run of identical
    blocks, build.SpecModel with scan_blocks). There XLA:CPU leaves the weight-gradient
    convolution in its raw layout (f01b_i01o->01bf) and runs it ~10x slower (ResNet-50 step
    0.76 s -> 8.0 s), so the gradients are written as the convolutions XLA would emit outside
    a loop: input (C, *spatial, N) with output gradient (*out, N, O) as kernel, explicit
    transposes."""
    n = lhs.ndim - 2
    if isinstance(dimension_numbers, tuple) and not isinstance(dimension_numbers,
                                                               lax.ConvDimensionNumbers):
        dimension_numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    if onednn.supports(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                       dimension_numbers, feature_group_count, batch_group_count,
                       preferred_element_type) and onednn.active():
        dil = tuple(rhs_dilation) if rhs_dilation is not None else (1,) * n
        transposed = lhs_dilation is not None and set(lhs_dilation) != {1}
        strides = tuple(lhs_dilation) if transposed else tuple(window_strides)
        pads = (tuple((int(a), int(b)) for a, b in padding) if transposed else
                onednn.explicit_padding(lhs.shape, rhs.shape, strides, padding, dil))
        k = choice.key(lhs.shape, rhs.shape, strides, pads, dil, feature_group_count,
                       transposed)
        choice.met(k)
        if onednn.requested() == "onednn" or choice.prefers_onednn(k):
            if transposed:
                return onednn.conv_transpose(lhs, rhs, strides, pads, dil, feature_group_count)
            return onednn.conv(lhs, rhs, strides, pads, dil, feature_group_count)
    mode = None
    if preferred_element_type is None and precision is None:
        if uses_patch_grad(lhs.shape, rhs.shape, padding, lhs_dilation, dimension_numbers,
                           feature_group_count, batch_group_count):
            mode = "patch"
        elif (in_loop and feature_group_count == 1 and batch_group_count == 1
              and _explicit(padding) and (lhs_dilation is None or set(lhs_dilation) <= {1})
              and dimension_numbers == _channels_last_numbers(lhs.ndim)):
            mode = "swap"
    if mode:
        strides = tuple(window_strides)
        dil = tuple(rhs_dilation) if rhs_dilation is not None else (1,) * n
        pads = tuple(tuple(int(v) for v in p) for p in padding)
        return _custom_grad_conv(lhs, rhs, strides, pads, dil, mode)
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    batch_group_count, precision, preferred_element_type)


def conv_in_loop(*args, **kw):
    """`conv_general_dilated` for convolutions inside a scanned block (see `in_loop`)."""
    return conv_general_dilated(*args, **kw, in_loop=True)


def _plain(x, w, strides, pads, dil):
    return lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dil,
                                    dimension_numbers=_channels_last_numbers(x.ndim))


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _custom_grad_conv(x, w, strides, pads, dil, mode):
    return _plain(x, w, strides, pads, dil)


def _fwd(x, w, strides, pads, dil, mode):
    return _plain(x, w, strides, pads, dil), (x, w)


def _bwd(strides, pads, dil, mode, res, g):
    x, w = res
    if mode == "swap":
        dx = flipped_input_grad(g, w, x.shape, strides, pads, dil)
    else:
        _, vjp_x = jax.vjp(lambda x: _plain(x, w, strides, pads, dil), x)
        (dx,) = vjp_x(g)  # XLA's own input gradient; dead code (removed) for a first layer
    grad = patch_weight_grad if mode == "patch" else swapped_weight_grad
    return dx, grad(x, g, w.shape, strides, pads, dil).astype(w.dtype)


_custom_grad_conv.defvjp(_fwd, _bwd)


def flipped_input_grad(g, w, x_shape, strides, pads, dil):
    """dx as the convolution jax's transpose rule emits (output gradient dilated by the
    stride, kernel flipped), but with the kernel's in/out axes transposed explicitly so the
    convolution has the standard layout."""
    n = g.ndim - 2
    ksize = w.shape[:n]
    wt = jnp.swapaxes(jnp.flip(w, tuple(range(n))), n, n + 1)  # (*kernel, O, C)
    new_pads = []
    for size, (lo, _), kk, s, d, o in zip(x_shape[1:-1], pads, ksize, strides, dil,
                                          g.shape[1:-1]):
        k_eff, o_eff = (kk - 1) * d + 1, (o - 1) * s + 1
        before = k_eff - lo - 1
        new_pads.append((before, size + k_eff - 1 - o_eff - before))
    return lax.conv_general_dilated(g, wt, (1,) * n, new_pads, lhs_dilation=strides,
                                    rhs_dilation=dil,
                                    dimension_numbers=_channels_last_numbers(g.ndim))


def swapped_weight_grad(x, g, w_shape, strides, pads, dil):
    """dW as one convolution with batch and channels swapped: the input as (C, *spatial, N)
    (batch = input channels, features = examples), the output gradient as a kernel
    (*out, N, O) dilated by the stride, window stride = the kernel dilation; the high
    padding is chosen so the output is exactly the kernel size (it may be negative)."""
    n = x.ndim - 2
    ksize = w_shape[:n]
    xt = jnp.transpose(x, (n + 1, *range(1, n + 1), 0))
    gt = jnp.transpose(g, (*range(1, n + 1), 0, n + 1))
    new_pads = [(lo, (kk - 1) * d + (o - 1) * s + 1 - size - lo)
                for size, (lo, _), kk, s, d, o in zip(x.shape[1:-1], pads, ksize, strides, dil,
                                                     g.shape[1:-1])]
    spec = (0, n + 1, *range(1, n + 1))
    dn = lax.ConvDimensionNumbers(spec, (n + 1, n, *range(n)), spec)
    dw = lax.conv_general_dilated(xt, gt, dil, new_pads, rhs_dilation=strides,
                                  dimension_numbers=dn)  # (C, *kernel, O)
    return jnp.transpose(dw, (*range(1, n + 1), 0, n + 1))


def patch_weight_grad(x, g, w_shape, strides, pads, dil):
    """dW[k, c, o] = sum over examples and output positions of x[patch k, c] * g[o], as one
    matmul: channels-first patches (K*C, N*P) @ g (N*P, O). Channels-first makes each kernel
    offset's slice a contiguous row block, and the matmul a plain row-major GEMM."""
    n = x.ndim - 2
    ksize, ci, co = w_shape[:n], w_shape[n], w_shape[n + 1]
    out = g.shape[1:-1]
    xt = jnp.transpose(x, (x.ndim - 1, 0, *range(1, x.ndim - 1)))  # (C, N, *spatial)
    xt = jnp.pad(xt, [(0, 0), (0, 0), *pads])
    rows = []
    for offset in _ndindex(ksize):
        start = (0, 0, *(o * d for o, d in zip(offset, dil)))
        limit = (ci, x.shape[0], *(o * d + (m - 1) * s + 1
                                   for o, d, m, s in zip(offset, dil, out, strides)))
        rows.append(lax.slice(xt, start, limit, (1, 1, *strides)))
    patches = jnp.stack(rows).reshape(len(rows) * ci, -1)
    dw = jnp.dot(patches, g.reshape(-1, co), preferred_element_type=jnp.float32)
    return dw.reshape(*ksize, ci, co)


def _ndindex(shape):
    """Kernel offsets in row-major order (the order of the kernel's leading axes)."""
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _ndindex(shape[1:]):
            yield (i, *rest)
