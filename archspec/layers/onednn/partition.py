"""The three oneDNN custom calls as JAX functions that a mesh of several devices partitions
by the batch, and that vmap maps.

XLA's SPMD partitioner knows nothing of a custom call, so over a data-parallel mesh it would
gather the batch onto every device and run the whole convolution there. Each call is
therefore a `custom_partitioning` op (Shardy sharding rule + partition callback):
  forward (x, w) -> y, input gradient (dy, w) -> dx
      the activation operand and the result keep the batch's sharding (axis 0), the kernel
      is replicated: each device convolves its own examples;
  weight gradient (x, dy) -> dw
      both operands keep the batch's sharding, each device computes the gradient of its
      examples, and a psum over the batch's mesh axes adds them (dw replicated).
Every other axis is replicated (a sharded spatial axis would need halos). A batch that
does not divide over its axes is gathered, as XLA would. On one device, or inside
shard_map, the op lowers to the plain custom call.

`custom_partitioning` has no batching rule, so each op is also a `custom_vmap` that runs
one call per mapped element (what `ffi_call(vmap_method="sequential")` did).

One cost: JAX's persistent compilation cache keys a program holding a custom_partitioning
op by a per-process pointer, so multi-device programs with oneDNN convolutions are
compiled again in each process (one-device programs have no such op and are cached)."""
from __future__ import annotations

import math
from functools import cache, partial

import jax
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

FWD = "archspec_onednn_conv_fwd"
BWD_DATA = "archspec_onednn_conv_bwd_data"
BWD_WEIGHTS = "archspec_onednn_conv_bwd_weights"


def call(target, shape, a, b, cfg):
    """`target` on (a, b), giving an array of `shape` (a's dtype). The ops are built once per
    target, configuration and shape (less the batch, which a mesh splits)."""
    rest = shape if target == BWD_WEIGHTS else tuple(shape[1:])
    return _op(target, rest, cfg)(a, b)


def _attrs(cfg):
    strides, pads, dil, groups = cfg
    i64 = partial(np.asarray, dtype=np.int64)
    return dict(stride=i64(strides), pad_lo=i64([p[0] for p in pads]),
                pad_hi=i64([p[1] for p in pads]), dilation=i64(dil), groups=np.int64(groups))


def _ffi(target, rest, cfg, a, b):
    shape = rest if target == BWD_WEIGHTS else (a.shape[0], *rest)  # a's batch: per shard
    return jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, a.dtype))(a, b, **_attrs(cfg))


@cache
def _op(target, rest, cfg):
    plain = partial(_ffi, target, rest, cfg)
    wgrad = target == BWD_WEIGHTS
    op = custom_partitioning(plain)
    ndim = len(rest) if wgrad else len(rest) + 1
    op.def_partition(partial(_partition, plain, wgrad), **_rule(wgrad, ndim))
    mapped = jax.custom_batching.custom_vmap(op)
    mapped.def_vmap(partial(_sequential, op))
    return mapped


def _rule(wgrad, ndim):
    """The Shardy rule: only the batch factor `n` may be sharded; in the weight gradient it
    is a reduction factor (absent from the result)."""
    names = lambda p, k: [f"{p}{i}" for i in range(k)]  # noqa: E731
    a = names("a", ndim - 1)
    b = names("b", ndim - 1 if wgrad else ndim)
    r = names("r", ndim if wgrad else ndim - 1)
    rule = (f"n {' '.join(a)}, {'n ' * wgrad}{' '.join(b)} -> "
            f"{'' if wgrad else 'n '}{' '.join(r)}")
    return dict(sharding_rule=rule, reduction_factors=("n",) if wgrad else (),
                need_replication_factors=tuple(a + b + r))


def _batch_axes(mesh, arg) -> tuple:
    """The mesh axes that split `arg`'s batch (axis 0) evenly, or () for none."""
    sharding = arg.sharding
    first = sharding.spec[0] if isinstance(sharding, NamedSharding) and sharding.spec else None
    axes = () if first is None else (first,) if isinstance(first, str) else tuple(first)
    size = math.prod(mesh.shape[name] for name in axes)
    return axes if axes and arg.shape[0] % size == 0 else ()


def _partition(plain, wgrad, mesh, arg_shapes, result_shape):
    axes = _batch_axes(mesh, arg_shapes[0])
    split = lambda ndim, first: NamedSharding(mesh, P(first, *(None,) * (ndim - 1)))  # noqa: E731
    batch = axes or None
    a, b = arg_shapes
    if wgrad:
        lower = (lambda x, g: lax.psum(plain(x, g), axes)) if axes else plain
        return mesh, lower, split(result_shape.ndim, None), (split(a.ndim, batch),
                                                             split(b.ndim, batch))
    return mesh, plain, split(result_shape.ndim, batch), (split(a.ndim, batch),
                                                          split(b.ndim, None))


def _sequential(op, axis_size, in_batched, a, b):
    """vmap: one call per element of the mapped axis, an unmapped operand shared."""
    a_mapped, b_mapped = in_batched
    if a_mapped and b_mapped:
        return lax.map(lambda ab: op(*ab), (a, b)), True
    if a_mapped:
        return lax.map(lambda x: op(x, b), a), True
    return lax.map(lambda y: op(a, y), b), True
