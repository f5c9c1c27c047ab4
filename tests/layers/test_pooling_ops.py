"""archspec's own lowerings give the results and gradients of the plain XLA ops.

- Pooling (pooling_ops.FAST_POOLS) avoids reduce_window: max/min windows are one strided
  view per window offset, non-overlapping avg windows a reshape + sum. Max/min values are
  bit-identical; gradients too where windows do not overlap, ties included (the whole
  gradient goes to the first extreme element of the window in row-major order, as
  reduce_window's select_and_scatter does), and equal to rounding where they overlap; avg
  agrees to float rounding.
- The opt-in patch-matmul weight gradient of small fan-in convolutions (conv_ops) equals
  jax.grad of lax.conv_general_dilated to 1e-5 relative, over strides, paddings, dilations
  and 1-3 spatial axes; grouped convolutions keep the plain lowering. So do the
  standard-layout gradients used inside scanned blocks.
- Scanned repeated blocks (build_model(scan_blocks=True)) compute the same function with
  the same parameter counts.

The comparisons run on XLA's convolution ($ARCHSPEC_CONV_BACKEND=xla for every test here):
they test archspec's XLA lowerings bit for bit, which oneDNN (the `auto` default when the
`archspec[onednn]` extra is installed) would replace with its own summation order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from archspec.layers import conv_ops, onednn, pooling_ops


@pytest.fixture(autouse=True)
def xla_convolutions(monkeypatch):
    # onednn.decide() caches per requested value, so setting the variable is enough
    monkeypatch.setenv(onednn.ENV, "xla")
    assert not onednn.active()


@pytest.fixture
def pool_flag():
    old = pooling_ops.FAST_POOLS
    yield
    pooling_ops.FAST_POOLS = old


def _window_vjp(x, op, k, s, pads, out, fast):
    pooling_ops.FAST_POOLS = fast
    f = jax.jit(lambda x: pooling_ops.window_pool(x, op, k, s, pads, out))
    y, vjp = jax.vjp(f, x)
    g = jnp.asarray(np.random.default_rng(1).normal(size=y.shape), x.dtype)
    return y, vjp(g)[0]


def _pool_vjp(x, op, k, fast):
    """Non-overlapping windows of size k, floor mode."""
    out = tuple(d // kk for d, kk in zip(x.shape[1:-1], k))
    return _window_vjp(x, op, k, k, [(0, 0)] * len(k), out, fast)


POOL_CASES = [((2, 8, 8, 3), (2, 2)), ((2, 9, 7, 3), (2, 3)), ((3, 10, 2), (3,)),
              ((2, 4, 6, 6, 2), (2, 3, 2)), ((1, 6, 6, 1), (3, 3)), ((2, 5, 4, 2), (1, 2))]


@pytest.mark.parametrize("shape,k", POOL_CASES)
@pytest.mark.parametrize("op", ["max", "min", "avg"])
def test_block_pool_matches_reduce_window(pool_flag, shape, k, op):
    rng = np.random.default_rng(0)
    # Rounded values after a ReLU: most windows hold ties (several zeros or equal maxima).
    x = jnp.asarray(np.maximum(np.round(rng.normal(size=shape)), 0), jnp.float32)
    y_fast, g_fast = _pool_vjp(x, op, k, True)
    y_ref, g_ref = _pool_vjp(x, op, k, False)
    assert y_fast.shape == y_ref.shape and g_fast.shape == g_ref.shape
    if op == "avg":
        np.testing.assert_allclose(y_fast, y_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(g_fast, g_ref, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(y_fast, y_ref)
        np.testing.assert_array_equal(g_fast, g_ref)


def test_block_pool_tie_goes_to_first_element(pool_flag):
    x = jnp.asarray([[0.0, 1.0], [1.0, 1.0]]).reshape(1, 2, 2, 1)  # three equal maxima
    _, g = _pool_vjp(x, "max", (2, 2), True)
    _, g_ref = _pool_vjp(x, "max", (2, 2), False)
    got = np.asarray(g)[0, :, :, 0]
    np.testing.assert_array_equal(got, np.asarray(g_ref)[0, :, :, 0])
    assert got[0, 1] != 0 and got[1, 0] == got[1, 1] == got[0, 0] == 0  # first in row-major


def test_block_pool_bf16(pool_flag):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 8, 8, 4)), jnp.bfloat16)
    for op in ("max", "avg"):
        y_fast, g_fast = _pool_vjp(x, op, (2, 2), True)
        y_ref, g_ref = _pool_vjp(x, op, (2, 2), False)
        assert y_fast.dtype == y_ref.dtype == jnp.bfloat16
        # bfloat16 sums may round differently: one bf16 ulp (2^-8 relative) at most
        ulp = 2.0 ** -7
        np.testing.assert_allclose(np.float32(y_fast), np.float32(y_ref), rtol=ulp, atol=ulp)
        np.testing.assert_allclose(np.float32(g_fast), np.float32(g_ref), rtol=ulp, atol=ulp)


def test_overlapping_and_padded_pools_keep_reduce_window(pool_flag, monkeypatch):
    calls = []
    monkeypatch.setattr(pooling_ops, "block_pool", lambda *a: calls.append(a))
    pooling_ops.FAST_POOLS = True
    x = jnp.ones((1, 8, 8, 1))
    pooling_ops.window_pool(x, "max", (3, 3), (2, 2), [(1, 1), (1, 1)], (4, 4))
    pooling_ops.window_pool(x, "max", (2, 2), (1, 1), [(0, 0), (0, 0)], (7, 7))
    pooling_ops.window_pool(x, "avg", (2, 2), (2, 2), [(1, 1), (1, 1)], (5, 5))
    pooling_ops.window_pool(jnp.ones((1, 7, 7, 1)), "max", (2, 2), (2, 2), [(0, 0), (0, 0)],
                            (4, 4))  # ceil mode: extra padding
    assert calls == []
    pooling_ops.window_pool(x, "max", (2, 2), (2, 2), [(0, 0), (0, 0)], (4, 4))
    assert len(calls) == 1


WINDOW_CASES = [  # (shape, k, s, pads, out): overlapping, padded, ceil-mode windows
    ((2, 9, 9, 3), (3, 3), (2, 2), [(1, 1), (1, 1)], (5, 5)),      # ResNet's stem pool
    ((2, 7, 7, 2), (3, 3), (1, 1), [(1, 1), (1, 1)], (7, 7)),      # Inception's 3×3/1
    ((2, 7, 6, 2), (2, 3), (1, 2), [(0, 0), (1, 0)], (6, 3)),
    ((2, 7, 7, 1), (3, 3), (2, 2), [(0, 0), (0, 0)], (3, 3)),      # unpadded, overlapping
    ((1, 8, 8, 1), (3, 3), (2, 2), [(0, 0), (0, 0)], (4, 4)),      # ceil mode: extra row
    ((3, 11, 2), (4,), (3,), [(1, 2)], (4,)),
    ((1, 5, 6, 5, 2), (3, 2, 3), (2, 1, 2), [(1, 1), (0, 0), (1, 1)], (3, 5, 3)),
]


@pytest.mark.parametrize("shape,k,s,pads,out", WINDOW_CASES)
@pytest.mark.parametrize("op", ["max", "min"])
def test_window_extreme_matches_reduce_window(pool_flag, shape, k, s, pads, out, op):
    """Values equal; gradients equal to rounding (an element in several windows sums their
    shares in another order), with ties everywhere (rounded values after a ReLU)."""
    x = jnp.asarray(np.maximum(np.round(np.random.default_rng(0).normal(size=shape)), 0),
                    jnp.float32)
    y_fast, g_fast = _window_vjp(x, op, k, s, pads, out, True)
    y_ref, g_ref = _window_vjp(x, op, k, s, pads, out, False)
    assert y_fast.shape == y_ref.shape == (shape[0], *out, shape[-1])
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-6, atol=1e-6)


def test_window_tie_goes_to_the_first_element_of_each_window(pool_flag):
    x = jnp.asarray([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]).reshape(1, 3, 3, 1)
    _, g = _window_vjp(x, "max", (2, 2), (1, 1), [(0, 0), (0, 0)], (2, 2), True)
    _, g_ref = _window_vjp(x, "max", (2, 2), (1, 1), [(0, 0), (0, 0)], (2, 2), False)
    np.testing.assert_array_equal(g, g_ref)


@pytest.mark.parametrize("k,s", [((2, 2), (2, 2)), ((3, 3), (2, 2))])
def test_max_pool_gradient_under_jit_is_the_op_by_op_gradient(pool_flag, k, s):
    """ReLU, a batch norm, a max pool, a 1x1 convolution: jit's gradient is the op-by-op
    (jax.disable_jit) gradient. Found by gradients of such a network 32% off under jit:
    the backward pass found each window's maximum again by comparing values, and XLA
    recomputes the normalised input in another fusion, rounded differently, so windows
    whose values no longer matched lost their gradient. The forward pass's choice is now
    kept."""
    pooling_ops.FAST_POOLS = True
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 12, 12, 8)), jnp.float32)
    scale = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
    w = jnp.asarray(0.3 * rng.normal(size=(1, 1, 8, 6)), jnp.float32)
    out = tuple((12 - kk) // ss + 1 for kk, ss in zip(k, s))
    numbers = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))

    def loss(x):
        y = jax.nn.relu(x)
        y = (y - y.mean((0, 1, 2))) / jnp.sqrt(y.var((0, 1, 2)) + 1e-5) * scale
        y = pooling_ops.window_pool(y, "max", k, s, [(0, 0), (0, 0)], out)
        y = lax.conv_general_dilated(y, w, (1, 1), "VALID", dimension_numbers=numbers)
        return jnp.mean(jnp.sin(y) * y)

    jitted = jax.jit(jax.grad(loss))(x)
    with jax.disable_jit():
        eager = jax.grad(loss)(x)
    assert np.linalg.norm(jitted - eager) <= 1e-5 * np.linalg.norm(eager)


# --- convolution ------------------------------------------------------------------------

@pytest.fixture
def conv_fast():
    old = conv_ops.FAST_GRAD
    conv_ops.FAST_GRAD = True
    yield
    conv_ops.FAST_GRAD = old


CONV_CASES = [  # input shape, kernel, stride, padding pairs, dilation, maps
    ((4, 9, 9, 3), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 8),
    ((2, 12, 10, 3), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 5),
    ((2, 11, 10, 2), (3, 2), (2, 3), ((0, 2), (1, 0)), (2, 1), 4),
    ((2, 8, 8, 1), (3, 3), (1, 1), ((0, 0), (0, 0)), (2, 2), 6),
    ((3, 12, 1), (5,), (2,), ((2, 2),), (1,), 4),
    ((2, 5, 6, 7, 1), (2, 3, 3), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 2), 3),
]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


@pytest.mark.parametrize("shape,k,s,pads,d,maps", CONV_CASES)
def test_patch_weight_grad_equals_xla(conv_fast, shape, k, s, pads, d, maps):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(*k, shape[-1], maps)), jnp.float32)
    dn = conv_ops._channels_last_numbers(x.ndim)
    assert conv_ops.uses_patch_grad(x.shape, w.shape, pads, None, dn)

    def plain(x, w):
        return lax.conv_general_dilated(x, w, s, pads, rhs_dilation=d, dimension_numbers=dn)

    def fast(x, w):
        return conv_ops.conv_general_dilated(x, w, s, pads, rhs_dilation=d, dimension_numbers=dn)

    def loss(f):
        return jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1)))

    (l1, (dx1, dw1)), (l2, (dx2, dw2)) = loss(plain)(x, w), loss(fast)(x, w)
    assert float(l1) == float(l2)
    np.testing.assert_array_equal(dx1, dx2)  # the input gradient is XLA's own
    assert _rel(dw2, dw1) < 1e-5


@pytest.mark.parametrize("shape,k,s,pads,d,maps", CONV_CASES + [
    ((2, 14, 14, 16), (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 8),
    ((2, 15, 15, 8), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 8)])
def test_in_loop_gradients_equal_xla(shape, k, s, pads, d, maps):
    """Inside scanned blocks both gradients are written as standard-layout convolutions:
    the same numbers as jax's own transpose rules."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(*k, shape[-1], maps)), jnp.float32)
    dn = conv_ops._channels_last_numbers(x.ndim)
    y, vjp = jax.vjp(lambda x, w: lax.conv_general_dilated(x, w, s, pads, rhs_dilation=d,
                                                           dimension_numbers=dn), x, w)
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    dx, dw = vjp(g)
    assert _rel(conv_ops.swapped_weight_grad(x, g, w.shape, s, pads, d), dw) < 1e-6
    assert _rel(conv_ops.flipped_input_grad(g, w, x.shape, s, pads, d), dx) < 1e-6
    y2, vjp2 = jax.vjp(lambda x, w: conv_ops.conv_general_dilated(
        x, w, s, pads, rhs_dilation=d, dimension_numbers=dn, in_loop=True), x, w)
    np.testing.assert_array_equal(y2, y)
    dx2, dw2 = vjp2(g)
    assert _rel(dx2, dx) < 1e-6 and _rel(dw2, dw) < 1e-6


def test_grouped_and_large_fan_in_convs_keep_xla(conv_fast):
    dn = conv_ops._channels_last_numbers(4)
    pads = ((1, 1), (1, 1))
    assert not conv_ops.uses_patch_grad((2, 8, 8, 4), (3, 3, 2, 4), pads, None, dn,
                                        feature_group_count=2)
    assert not conv_ops.uses_patch_grad((2, 8, 8, 16), (3, 3, 16, 4), pads, None, dn)
    assert not conv_ops.uses_patch_grad((2, 8, 8, 3), (3, 3, 3, 4), "SAME", None, dn)
    conv_ops.FAST_GRAD = False
    assert not conv_ops.uses_patch_grad((2, 8, 8, 3), (3, 3, 3, 4), pads, None, dn)


def test_grouped_conv_gradients_unchanged(conv_fast):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 7, 7, 4)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 2, 6)), jnp.float32)
    dn = conv_ops._channels_last_numbers(4)
    args = ((2, 1), ((1, 1), (0, 2)))

    def f(op):
        return jax.grad(lambda x, w: jnp.sum(op(x, w, *args, rhs_dilation=(1, 2),
                                                    dimension_numbers=dn,
                                                    feature_group_count=2) ** 2), (0, 1))

    a, b = f(lax.conv_general_dilated)(x, w), f(conv_ops.conv_general_dilated)(x, w)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_spec_model_gradients_with_fast_ops(conv_fast, pool_flag):
    """A whole built model: parameter gradients with both lowerings on equal the plain ones."""
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text

    text = """
    name: t
    input: {shape: [8, 8, 3]}
    defaults: {activation: relu}
    layers:
      - conv: {maps: 4, kernel: 3, padding: same}
      - pool: {op: max, size: 2}
      - conv: {maps: 4, kernel: 3, stride: 2, padding: 1, groups: 2}
      - pool: {op: avg, size: 2}
      - flatten
      - dense: {units: 3, activation: linear}
    heads: {y: {from: dense1, output: linear}}
    """
    graph = load_architecture_text(text)
    model = build_model(graph)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 8, 8, 3)), jnp.float32)
    params = model.init(jax.random.key(0), x)["params"]

    def grads():
        return jax.jit(jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x)["y"] ** 2)))(
            params)

    fast = grads()
    conv_ops.FAST_GRAD, pooling_ops.FAST_POOLS = False, False
    plain = grads()
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(plain)):
        assert _rel(a, b) < 1e-5


# --- scanned repeated blocks (opt-in builder option) -----------------------------------

REPEATED = """
name: rep
input: {shape: [8, 8, 3]}
defaults: {bias: false}
blocks:
  basic:
    params: {maps: 4, stride: 1}
    layers:
      - residual:
          body:
            - conv: {maps: $maps, kernel: 3, stride: $stride, padding: 1, name: conv1}
            - batchnorm: {name: bn1}
            - relu
            - conv: {maps: $maps, kernel: 3, padding: 1, name: conv2}
            - batchnorm: {name: bn2}
          projection: {norm: batchnorm}
          activation: relu
layers:
  - basic: {maps: 4, stride: 2, name: down}
  - basic: {maps: 4, repeat: 3}
  - pool: {op: avg, global: true}
  - dense: {units: 2, bias: true, name: logits}
heads:
  y: {from: logits, output: softmax}
"""


def test_scan_blocks_same_function_and_counts():
    from archspec.model.build import BlockRun, build_model, scan_plan
    from archspec.spec.resolve import load_architecture_text

    graph = load_architecture_text(REPEATED)
    runs = [s for s in scan_plan(graph) if isinstance(s, BlockRun)]
    assert [len(r.instances) for r in runs] == [3]
    x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 8, 8, 3)), jnp.float32)
    plain, scanned = build_model(graph), build_model(graph, scan_blocks=True)
    v0 = {k: v for k, v in plain.init(jax.random.key(0), x).items()
          if k in ("params", "batch_stats")}
    v1 = jax.eval_shape(lambda: scanned.init(jax.random.key(0), x))

    def count(t):
        return sum(a.size for a in jax.tree_util.tree_leaves(t))

    assert count(v0["params"]) == count(v1["params"]) == graph.total("params")
    assert count(v0["batch_stats"]) == count(v1["batch_stats"])

    run = runs[0]

    def restack(col):  # the plain variables in the scanned layout
        out = {k: v for k, v in col.items() if not any(k.startswith(p) for p in run.prefixes)}
        out[run.name] = {}
        for local in {k[len(run.prefixes[0]):] for k in col if k.startswith(run.prefixes[0])}:
            out[run.name][local] = jax.tree_util.tree_map(
                lambda *a: jnp.stack(a), *[col[p + local] for p in run.prefixes])
        return out

    v1 = {k: restack(v) for k, v in v0.items()}

    def loss(model, variables):
        def f(params):
            out, _ = model.apply({**variables, "params": params}, x, train=True,
                                 mutable=["batch_stats"])
            return jnp.sum(out["y"] ** 2)
        return jax.value_and_grad(f)(variables["params"])

    (l0, g0), (l1, g1) = loss(plain, v0), loss(scanned, v1)
    assert float(l0) == pytest.approx(float(l1), rel=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(restack(g0)), jax.tree_util.tree_leaves(g1)):
        assert _rel(b, a) < 1e-5
