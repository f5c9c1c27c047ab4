"""The builder's numerics against independent NumPy references.

Every model here is compiled from inline YAML, given known (random) weights, run once
under `jax.jit`, and each node's output (sown under "intermediates") is compared with a
plain NumPy computation written from the layer's definition: explicit sliding windows for
convolution and pooling, the lecture's formulas for activations, PyTorch's documented
semantics for ceil mode, average-pool padding, adaptive bins and LRN.
"""
from __future__ import annotations

import functools
import math
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archspec.model.build import OUT, build_model
from archspec.spec.resolve import load_architecture_text
from helpers import run_cli

KEY = jax.random.key(0)
RTOL, ATOL = 1e-5, 1e-5


def close(got, want, rtol=RTOL, atol=ATOL):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * max(1.0, np.abs(want).max()))


def rand(shape, seed, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


class Net:
    """A compiled spec with its variables; `outs` maps node id -> output (NumPy)."""

    def __init__(self, text: str, x, randomize: bool = True, seed: int = 0):
        self.graph = load_architecture_text(textwrap.dedent(text))
        self.model = build_model(self.graph)
        model = self.model

        @jax.jit
        def init(x):
            return model.init({"params": KEY, "dropout": KEY}, x, train=False)

        # Compiling random initialisers costs seconds per shape on a small CPU, so a model
        # whose weights are replaced anyway is initialised abstractly (batch-norm statistics,
        # which are deterministic, still come from a real init).
        abstract = jax.eval_shape(init, x)
        if randomize and "params" in abstract:
            variables = dict(init(x)) if set(abstract) - {"params"} else {}
            rng = np.random.default_rng(seed)
            variables["params"] = jax.tree_util.tree_map(
                lambda a: jnp.asarray(rng.normal(0.0, 0.5, a.shape).astype(np.float32)),
                abstract["params"])
        else:
            variables = dict(init(x))
        self.variables = variables
        self._check_counts()
        model = self.model
        self._eval = jax.jit(lambda v, x: model.apply(v, x, train=False,
                                                      mutable=["intermediates"]))
        self._train = jax.jit(lambda v, x, k: model.apply(
            v, x, train=True, rngs={"dropout": k}, mutable=["intermediates", "batch_stats"]))

    def _check_counts(self):
        """The resolver's parameter counts agree with the Flax variables."""
        for node in self.graph.layers:
            got = sum(int(a.size) for a in jax.tree_util.tree_leaves(
                self.variables.get("params", {}).get(node.id, {})))
            assert got == node.params, (node.id, got, node.params)
            state = sum(int(a.size) for a in jax.tree_util.tree_leaves(
                self.variables.get("batch_stats", {}).get(node.id, {})))
            assert state == node.state, (node.id, state, node.state)

    def p(self, node: str) -> dict:
        return {k: np.asarray(v, np.float64) for k, v in self.variables["params"][node].items()}

    def _collect(self, heads, state, batch):
        outs = {k[len(OUT):]: np.asarray(v[0]) for k, v in state["intermediates"].items()}
        for node_id, y in outs.items():  # shapes agree with the resolver's inference
            assert y.shape == (batch, *self.graph.nodes[node_id].shape), node_id
        for name, y in heads.items():
            outs["head:" + name] = np.asarray(y)
        return outs

    def run(self, x):
        heads, state = self._eval(self.variables, x)
        return self._collect(heads, state, len(next(iter(x.values())) if isinstance(x, dict)
                                                else x))

    def train(self, x, key=KEY):
        heads, state = self._train(self.variables, x, key)
        return self._collect(heads, state, len(x)), state.get("batch_stats")


# --- NumPy references ---------------------------------------------------------------------

def same_pads(sizes, kernel, stride, dilation):
    """XLA/TensorFlow 'same': output ceil(n/s), the odd padding pixel goes high."""
    pads = []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def np_conv(x, w, b, stride, pads, dilation, groups):
    """Channels-last convolution by explicit sliding windows; w: (*kernel, cin/groups, cout)."""
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    kernel, cin_g, cout = w.shape[:n], w.shape[n], w.shape[-1]
    cout_g = cout // groups
    out = [(xp.shape[1 + i] - ((kernel[i] - 1) * dilation[i] + 1)) // stride[i] + 1
           for i in range(n)]
    y = np.zeros((x.shape[0], *out, cout))
    for o in np.ndindex(*out):
        for kk in np.ndindex(*kernel):
            at = tuple(o[i] * stride[i] + kk[i] * dilation[i] for i in range(n))
            patch = xp[(slice(None), *at, slice(None))]  # (batch, cin)
            for g in range(groups):
                y[(slice(None), *o, slice(g * cout_g, (g + 1) * cout_g))] += (
                    patch[:, g * cin_g:(g + 1) * cin_g] @ w[kk][:, g * cout_g:(g + 1) * cout_g])
    return y + (0.0 if b is None else b)


def torch_pool_out(n, k, s, lo, hi, ceil):
    span = n + lo + hi - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + lo:  # the last window must start inside input or left pad
        out -= 1
    return out


def np_pool(x, op, k, s, pads, ceil=False):
    """PyTorch pooling: padding is -inf/+inf for max/min; avg divides by the window clipped
    to the padded input (count_include_pad=True), ceil-mode overhang never counts."""
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    sizes = x.shape[1:-1]
    out = [torch_pool_out(sizes[i], k[i], s[i], *pads[i], ceil) for i in range(n)]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o in np.ndindex(*out):
        starts = [o[i] * s[i] - pads[i][0] for i in range(n)]
        data = tuple(slice(max(st, 0), min(st + k[i], sizes[i])) for i, st in enumerate(starts))
        win = x[(slice(None), *data, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        if op == "max":
            v = win.max(axis=1)
        elif op == "min":
            v = win.min(axis=1)
        else:
            count = math.prod(min(st + k[i], sizes[i] + pads[i][1]) - st
                              for i, st in enumerate(starts))
            v = win.sum(axis=1) / count
        y[(slice(None), *o, slice(None))] = v
    return y


def np_adaptive(x, op, out):
    """PyTorch's adaptive pooling: bin i of n -> o covers [floor(i*n/o), ceil((i+1)*n/o))."""
    x = np.asarray(x, np.float64)
    sizes = x.shape[1:-1]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    fn = {"max": np.max, "min": np.min, "avg": np.mean}[op]
    for o in np.ndindex(*out):
        sl = tuple(slice(math.floor(i * n / m), math.ceil((i + 1) * n / m))
                   for i, n, m in zip(o, sizes, out))
        win = x[(slice(None), *sl, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None), *o, slice(None))] = fn(win, axis=1)
    return y


def np_lrn(x, size, alpha, beta, k):
    """b_c = a_c / (k + alpha/size * sum_{c' = c - size//2}^{c + (size-1)//2} a_c'^2)^beta."""
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    y = np.empty_like(x)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        total = (x[..., lo:hi] ** 2).sum(-1)
        y[..., i] = x[..., i] / (k + alpha / size * total) ** beta
    return y


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_act(name, x, **p):
    x = np.asarray(x, np.float64)
    b = p.get("beta", 1.0)
    if name == "relu":
        return np.maximum(0.0, b * x)
    if name in ("sigmoid", "logistic"):
        return _sigmoid(b * x)
    if name == "tanh":
        return np.tanh(b * x)
    if name == "softplus":
        return np.log1p(np.exp(b * x))
    if name == "elu":
        a = p.get("a", 1.0)
        return np.where(b * x >= 0, b * x, a * (np.exp(b * x) - 1.0))
    if name == "softmax":
        e = np.exp(b * x - (b * x).max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if name == "linear":
        return b * x
    if name in ("swish", "silu"):
        return x * _sigmoid(b * x)
    if name == "hard_sigmoid":  # PyTorch's Hardsigmoid: 0 below -3, 1 above 3, linear between
        return np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, x / 6.0 + 0.5))
    if name == "hard_swish":
        return x * np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, x / 6.0 + 0.5))
    if name == "mish":
        return x * np.tanh(np.log1p(np.exp(x)))
    if name == "leaky_relu":
        return np.where(x >= 0, x, p.get("slope", 0.01) * x)
    if name == "relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "gelu" and p.get("approximate") == "tanh":  # PyTorch's GELU(approximate='tanh')
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    raise AssertionError(name)


# --- convolution ----------------------------------------------------------------------------

# name: (options, kernel, stride, padding ("same", or (low, high) pairs), dilation, groups)
CONV2D = {
    "valid": ("{maps: 3, kernel: 3}", (3, 3), (1, 1), [(0, 0)] * 2, (1, 1), 1),
    "stride_pad": ("{maps: 3, kernel: 3, stride: 2, padding: 1}",
                   (3, 3), (2, 2), [(1, 1)] * 2, (1, 1), 1),
    "same": ("{maps: 2, kernel: 3, padding: same}", (3, 3), (1, 1), "same", (1, 1), 1),
    "same_stride": ("{maps: 2, kernel: [3, 2], stride: 2, padding: same}",
                    (3, 2), (2, 2), "same", (1, 1), 1),
    "same_even": ("{maps: 2, kernel: 4, padding: same}", (4, 4), (1, 1), "same", (1, 1), 1),
    "per_axis": ("{maps: 2, kernel: 3, padding: [1, 2], stride: [2, 1]}",
                 (3, 3), (2, 1), [(1, 1), (2, 2)], (1, 1), 1),
    "pairs": ("{maps: 2, kernel: 3, padding: [[1, 0], [2, 1]], stride: [1, 2]}",
              (3, 3), (1, 2), [(1, 0), (2, 1)], (1, 1), 1),
    "dilation": ("{maps: 2, kernel: 3, dilation: 2, padding: 2}",
                 (3, 3), (1, 1), [(2, 2)] * 2, (2, 2), 1),
    "dilation_stride": ("{maps: 2, kernel: [2, 3], dilation: [2, 1], stride: [2, 1]}",
                        (2, 3), (2, 1), [(0, 0)] * 2, (2, 1), 1),
    "dilation_same": ("{maps: 2, kernel: 3, dilation: 3, padding: same}",
                      (3, 3), (1, 1), "same", (3, 3), 1),
    "groups": ("{maps: 6, kernel: 3, groups: 2}", (3, 3), (1, 1), [(0, 0)] * 2, (1, 1), 2),
    "depthwise": ("{maps: 4, kernel: 3, groups: 4, padding: same}",
                  (3, 3), (1, 1), "same", (1, 1), 4),
    "depthwise_x2": ("{maps: 8, kernel: 2, groups: 4, stride: 2}",
                     (2, 2), (2, 2), [(0, 0)] * 2, (1, 1), 4),
    "no_bias": ("{maps: 2, kernel: 1, bias: false}", (1, 1), (1, 1), [(0, 0)] * 2, (1, 1), 1),
}
X2D = rand((2, 7, 6, 4), 1)


@functools.lru_cache(None)
def conv2d_net():
    layers = "\n".join(f"  - conv: {{name: {n}, inputs: input, {o[1:]}"
                       for n, (o, *_) in CONV2D.items())
    net = Net(f"name: conv2d\ninput: {{shape: [7, 6, 4]}}\nlayers:\n{layers}\n"
              "heads: {out: {from: valid}}\n", X2D)
    return net, net.run(X2D)


@pytest.mark.parametrize("case", list(CONV2D))
def test_conv2d(case):
    net, outs = conv2d_net()
    _, kernel, stride, pads, dilation, groups = CONV2D[case]
    if pads == "same":
        pads = same_pads(X2D.shape[1:-1], kernel, stride, dilation)
    p = net.p(case)
    assert p["kernel"].shape == (*kernel, 4 // groups, p["kernel"].shape[-1])
    assert ("bias" in p) == (case != "no_bias")
    want = np_conv(X2D, p["kernel"], p.get("bias"), stride, pads, dilation, groups)
    close(outs[case], want)


def test_conv_same_keeps_ceil_size():
    net, outs = conv2d_net()
    assert outs["same"].shape[1:3] == (7, 6)
    assert outs["same_stride"].shape[1:3] == (4, 3)


def test_conv1d_and_3d():
    x1 = rand((2, 9, 3), 2)
    net = Net("""
        name: c1
        input: {shape: [9, 3]}
        layers:
          - conv: {name: a, maps: 4, kernel: 3, stride: 2, padding: same}
          - conv: {name: b, inputs: input, maps: 3, kernel: 2, dilation: 3, groups: 3,
                   padding: [[2, 1]]}
          - conv: {name: c, inputs: input, maps: 2, kernel: 4, padding: 1,
                   activation: {tanh: {beta: 0.5}}}
        heads: {out: {from: a}}
        """, x1)
    outs = net.run(x1)
    p = net.p("a")
    close(outs["a"], np_conv(x1, p["kernel"], p["bias"], (2,), same_pads((9,), (3,), (2,), (1,)),
                             (1,), 1))
    p = net.p("b")
    close(outs["b"], np_conv(x1, p["kernel"], p["bias"], (1,), [(2, 1)], (3,), 3))
    p = net.p("c")
    close(outs["c"], np_act("tanh", np_conv(x1, p["kernel"], p["bias"], (1,), [(1, 1)], (1,), 1),
                            beta=0.5))

    x3 = rand((2, 4, 5, 5, 2), 3)
    net = Net("""
        name: c3
        input: {shape: [4, 5, 5, 2]}
        layers:
          - conv: {name: a, maps: 3, kernel: [2, 3, 3], stride: [1, 2, 2],
                   padding: [[0, 1], [1, 1], [1, 0]]}
          - conv: {name: b, inputs: input, maps: 4, kernel: 2, groups: 2, dilation: [1, 2, 1]}
          - conv: {name: c, inputs: input, maps: 2, kernel: 3, padding: same, stride: 2}
        heads: {out: {from: a}}
        """, x3)
    outs = net.run(x3)
    p = net.p("a")
    close(outs["a"], np_conv(x3, p["kernel"], p["bias"], (1, 2, 2), [(0, 1), (1, 1), (1, 0)],
                             (1, 1, 1), 1))
    p = net.p("b")
    close(outs["b"], np_conv(x3, p["kernel"], p["bias"], (1, 1, 1), [(0, 0)] * 3, (1, 2, 1), 2))
    p = net.p("c")
    close(outs["c"], np_conv(x3, p["kernel"], p["bias"], (2, 2, 2),
                             same_pads((4, 5, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1)), (1, 1, 1), 1))


# --- dense ------------------------------------------------------------------------------------

def test_dense_flat_and_per_position():
    x = rand((3, 4, 5), 4)
    net = Net("""
        name: d
        input: {shape: [4, 5]}
        layers:
          - dense: {units: 3, name: seq}
          - flatten: {inputs: input, name: flat}
          - dense: {units: 2, activation: {softplus: {beta: 2.0}}, name: fc}
          - dense: {units: 2, bias: false, name: nob, inputs: flat}
        heads: {out: {from: fc}}
        """, x)
    outs = net.run(x)
    p = net.p("seq")
    assert p["kernel"].shape == (5, 3)
    close(outs["seq"], np.einsum("bpi,io->bpo", x.astype(np.float64), p["kernel"]) + p["bias"])
    flat = x.reshape(3, -1).astype(np.float64)
    p = net.p("fc")
    close(outs["fc"], np_act("softplus", flat @ p["kernel"] + p["bias"], beta=2.0))
    close(outs["head:out"], outs["fc"])
    assert set(net.p("nob")) == {"kernel"}
    close(outs["nob"], flat @ net.p("nob")["kernel"])


# --- pooling ----------------------------------------------------------------------------------

# name: (options, op, size, stride, pads ("same" or pairs), ceil)
POOL = {
    "max2": ("{op: max, size: 2}", "max", (2, 2), (2, 2), [(0, 0)] * 2, False),
    "max3s2p1": ("{op: max, size: 3, stride: 2, padding: 1}",
                 "max", (3, 3), (2, 2), [(1, 1)] * 2, False),
    "min3s2p1": ("{op: min, size: 3, stride: 2, padding: 1}",
                 "min", (3, 3), (2, 2), [(1, 1)] * 2, False),
    "avg3s2p1": ("{op: avg, size: 3, stride: 2, padding: 1}",
                 "avg", (3, 3), (2, 2), [(1, 1)] * 2, False),
    "avg_pairs": ("{op: avg, size: 2, stride: 1, padding: [[1, 0], [0, 1]]}",
                  "avg", (2, 2), (1, 1), [(1, 0), (0, 1)], False),
    "avg_rect": ("{op: avg, size: [3, 2], stride: [1, 2]}",
                 "avg", (3, 2), (1, 2), [(0, 0)] * 2, False),
    "max_same": ("{op: max, size: 3, stride: 2, padding: same}",
                 "max", (3, 3), (2, 2), "same", False),
    "max_ceil": ("{op: max, size: 2, ceil_mode: true}", "max", (2, 2), (2, 2), [(0, 0)] * 2, True),
    "min_ceil": ("{op: min, size: 3, stride: 3, ceil_mode: true}",
                 "min", (3, 3), (3, 3), [(0, 0)] * 2, True),
    "avg_ceil": ("{op: avg, size: 3, stride: 3, ceil_mode: true}",
                 "avg", (3, 3), (3, 3), [(0, 0)] * 2, True),
    # With padding 1 the plain ceil formula gives one more window on both axes; PyTorch drops
    # it because it would start in the right padding.
    "max_ceil_pad": ("{op: max, size: 2, padding: 1, ceil_mode: true}",
                     "max", (2, 2), (2, 2), [(1, 1)] * 2, True),
    "avg_ceil_pad": ("{op: avg, size: 2, padding: 1, ceil_mode: true}",
                     "avg", (2, 2), (2, 2), [(1, 1)] * 2, True),
    "avg_ceil_pad3": ("{op: avg, size: 3, stride: 2, padding: 1, ceil_mode: true}",
                      "avg", (3, 3), (2, 2), [(1, 1)] * 2, True),
}
ADAPTIVE = {"ad_max": ("max", (3, 2)), "ad_min": ("min", (3, 2)), "ad_avg": ("avg", (3, 2)),
            "ad_avg_4": ("avg", (2, 4)), "ad_max_up": ("max", (9, 5)),
            "ad_avg_1": ("avg", (1, 1)), "ad_max_div": ("max", (7, 1))}
XP = rand((2, 7, 5, 3), 5, -5.0, 5.0)


@functools.lru_cache(None)
def pool_net():
    layers = [f"  - pool: {{name: {n}, inputs: input, {o[1:]}" for n, (o, *_) in POOL.items()]
    layers += [f"  - pool: {{name: {n}, inputs: input, op: {op}, adaptive: {list(size)}}}"
               for n, (op, size) in ADAPTIVE.items()]
    layers += [f"  - pool: {{name: g_{op}, inputs: input, op: {op}, global: true}}"
               for op in ("max", "min", "avg")]
    layers += ["  - pool: {name: g_keep, inputs: input, op: avg, global: true, keepdims: true}"]
    net = Net("name: pools\ninput: {shape: [7, 5, 3]}\nlayers:\n" + "\n".join(layers)
              + "\nheads: {out: {from: max2}}\n", XP)
    return net, net.run(XP)


@pytest.mark.parametrize("case", list(POOL))
def test_window_pool(case):
    _, outs = pool_net()
    _, op, k, s, pads, ceil = POOL[case]
    if pads == "same":
        pads = same_pads(XP.shape[1:-1], k, s, (1, 1))
    close(outs[case], np_pool(XP, op, k, s, pads, ceil))


def test_pool_ceil_shapes_follow_pytorch():
    _, outs = pool_net()
    assert outs["max_ceil"].shape[1:3] == (4, 3)      # floor would give (3, 2)
    assert outs["avg_ceil"].shape[1:3] == (3, 2)      # floor would give (2, 1)
    assert outs["max_ceil_pad"].shape[1:3] == (4, 3)  # the plain ceil formula gives (5, 4)
    # The last ceil window of avg_ceil covers one input row (row 6) and nothing else:
    close(outs["avg_ceil"][:, 2, 0], XP[:, 6, 0:3].astype(np.float64).mean(axis=1))


def test_avg_pool_counts_padding():
    _, outs = pool_net()
    # Corner window of a 3x3 window with padding 1: four data values, divided by 9.
    close(outs["avg3s2p1"][:, 0, 0], XP[:, :2, :2].astype(np.float64).sum(axis=(1, 2)) / 9)


@pytest.mark.parametrize("case", list(ADAPTIVE))
def test_adaptive_pool(case):
    _, outs = pool_net()
    op, size = ADAPTIVE[case]
    close(outs[case], np_adaptive(XP, op, size))


def test_adaptive_bins_7_to_3_and_5_to_2():
    _, outs = pool_net()
    x = XP.astype(np.float64)
    # rows 7 -> 3: [0, 3), [2, 5), [4, 7); columns 5 -> 2: [0, 3), [2, 5)
    close(outs["ad_max"][:, 1, 1], x[:, 2:5, 2:5].max(axis=(1, 2)))
    close(outs["ad_avg"][:, 2, 0], x[:, 4:7, 0:3].mean(axis=(1, 2)))
    close(outs["ad_min"][:, 0, 1], x[:, 0:3, 2:5].min(axis=(1, 2)))


@pytest.mark.parametrize("op", ["max", "min", "avg"])
def test_global_pool(op):
    _, outs = pool_net()
    fn = {"max": np.max, "min": np.min, "avg": np.mean}[op]
    close(outs[f"g_{op}"], fn(XP.astype(np.float64), axis=(1, 2)))
    if op == "avg":
        close(outs["g_keep"], XP.astype(np.float64).mean(axis=(1, 2), keepdims=True))


def test_pool_hand_computed_4x4():
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    net = Net("""
        name: hand
        input: {shape: [4, 4, 1]}
        layers:
          - pool: {name: mx, op: max, size: 2}
          - pool: {name: mn, op: min, size: 2, inputs: input}
          - pool: {name: av, op: avg, size: 2, inputs: input}
        heads: {out: {from: mx}}
        """, x)
    outs = net.run(x)
    close(outs["mx"][0, ..., 0], [[6, 8], [14, 16]])
    close(outs["mn"][0, ..., 0], [[1, 3], [9, 11]])
    close(outs["av"][0, ..., 0], [[3.5, 5.5], [11.5, 13.5]])


# --- local response normalisation -------------------------------------------------------------

def test_lrn():
    x = rand((2, 3, 3, 7), 6, -3.0, 3.0)
    net = Net("""
        name: lrn
        input: {shape: [3, 3, 7]}
        layers:
          - lrn: {name: alexnet}
          - lrn: {name: odd, inputs: input, size: 3, alpha: 0.5, beta: 0.75, k: 1.0}
          - lrn: {name: even, inputs: input, size: 4, alpha: 0.8, beta: 0.5, k: 1.5}
          - lrn: {name: wide, inputs: input, size: 9, alpha: 1.0, beta: 1.0, k: 0.5}
        heads: {out: {from: alexnet}}
        """, x)
    outs = net.run(x)
    close(outs["alexnet"], np_lrn(x, 5, 1e-4, 0.75, 2.0))
    close(outs["odd"], np_lrn(x, 3, 0.5, 0.75, 1.0))
    close(outs["even"], np_lrn(x, 4, 0.8, 0.5, 1.5))
    close(outs["wide"], np_lrn(x, 9, 1.0, 1.0, 0.5))


# --- activations ------------------------------------------------------------------------------

ACTS = {
    "relu": {"beta": 2.0}, "sigmoid": {"beta": 0.5}, "logistic": {"beta": 1.5},
    "tanh": {"beta": 2.0}, "softplus": {"beta": 3.0}, "elu": {"beta": 2.0, "a": 0.5},
    "softmax": {"beta": 2.5}, "linear": {"beta": -1.5}, "swish": {"beta": 1.7},
    "leaky_relu": {"slope": 0.2}, "relu6": {}, "gelu": {}, "silu": {"beta": 1.0},
    "hard_sigmoid": {}, "hard_swish": {}, "mish": {},
}
XA = np.concatenate([rand((3, 7), 7, -8.0, 8.0), np.zeros((3, 1), np.float32)], axis=1)


def _yaml_map(d):
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"


@functools.lru_cache(None)
def act_net():
    layers = []
    for fn, p in ACTS.items():
        # as a layer named after the function, and through the `activation` layer
        layers.append(f"  - {fn}: {{name: named_{fn}, inputs: input"
                      + "".join(f", {k}: {v}" for k, v in p.items()) + "}")
        layers.append(f"  - activation: {{name: fn_{fn}, inputs: input, "
                      f"function: {{{fn}: {_yaml_map(p)}}}}}")
    layers += [
        "  - elu: {beta: 2.0, a: 0.5, name: elu_layer, inputs: input}",
        "  - activation: {elu: {beta: 2.0}}",  # the inline form reads the previous layer
        "  - relu",
        "  - activation: {name: plain, inputs: input, function: relu}",
        "  - activation: {name: short, inputs: input, function: {swish: null}}",
        "  - gelu: {name: gelu_tanh, inputs: input, approximate: tanh}",
        "  - activation: {name: fn_gelu_tanh, inputs: input, function: {gelu: {approximate: "
        "tanh}}}",
    ]
    net = Net("name: acts\ninput: {shape: [8]}\nlayers:\n" + "\n".join(layers)
              + "\nheads: {out: {from: plain}}\n", XA)
    return net, net.run(XA)


@pytest.mark.parametrize("fn", list(ACTS))
def test_activation_with_parameters(fn):
    _, outs = act_net()
    want = np_act(fn, XA, **ACTS[fn])
    close(outs[f"named_{fn}"], want)
    close(outs[f"fn_{fn}"], want)


def test_activation_layer_forms():
    net, outs = act_net()
    elu = np_act("elu", XA, beta=2.0, a=0.5)
    close(outs["elu_layer"], elu)
    # `- activation: {elu: {beta: 2.0}}` applies elu(β=2, a=1) to the elu layer before it
    assert net.graph.nodes["activation1"].inputs == ["elu_layer"]
    close(outs["activation1"], np_act("elu", elu, beta=2.0))
    close(outs["relu1"], np.maximum(outs["activation1"], 0.0))
    close(outs["plain"], np.maximum(XA, 0.0))
    close(outs["short"], np_act("swish", XA))
    tanh_gelu = np_act("gelu", XA, approximate="tanh")
    close(outs["gelu_tanh"], tanh_gelu)
    close(outs["fn_gelu_tanh"], tanh_gelu)
    assert np.abs(tanh_gelu - np_act("gelu", XA)).max() > 1e-4  # not the exact gelu


@pytest.mark.parametrize("text, found", [
    ("- gelu: {approximate: tahn}", "'tahn'"),
    ("- dense: {units: 2, activation: {gelu: {approximate: 1}}}", "1"),
])
def test_a_text_parameter_is_one_of_its_names(text, found, tmp_path):
    spec = tmp_path / "a.yaml"
    spec.write_text(f"name: a\ninput: {{shape: [4]}}\nlayers:\n  {text}\n")
    done = run_cli("validate", str(spec))
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert "a.yaml:4" in done.stdout + done.stderr and found in done.stdout + done.stderr


def test_activation_option_of_dense_and_conv_and_defaults():
    x = rand((2, 5, 5, 3), 8)
    net = Net("""
        name: act_opts
        input: {shape: [5, 5, 3]}
        defaults: {activation: {tanh: {beta: 0.5}}}
        layers:
          - conv: {name: c_elu, maps: 2, kernel: 3, activation: {elu: {beta: 2.0, a: 0.5}}}
          - conv: {name: c_default, inputs: input, maps: 2, kernel: 3}
          - conv: {name: c_leaky, inputs: input, maps: 2, kernel: 3, activation: {leaky_relu: {slope: 0.3}}}
          - flatten: {name: flat, inputs: input}
          - dense: {name: d_swish, units: 4, activation: {swish: {beta: 2.0}}}
          - dense: {name: d_default, units: 4, inputs: flat}
          - dense: {name: d_linear, units: 4, inputs: flat, activation: linear}
        heads: {out: {from: d_swish}}
        """, x)
    outs = net.run(x)
    pads = [(0, 0)] * 2

    def conv(name):
        p = net.p(name)
        return np_conv(x, p["kernel"], p["bias"], (1, 1), pads, (1, 1), 1)

    def dense(name):
        p = net.p(name)
        return x.reshape(2, -1).astype(np.float64) @ p["kernel"] + p["bias"]

    close(outs["c_elu"], np_act("elu", conv("c_elu"), beta=2.0, a=0.5))
    close(outs["c_default"], np_act("tanh", conv("c_default"), beta=0.5))
    close(outs["c_leaky"], np_act("leaky_relu", conv("c_leaky"), slope=0.3))
    close(outs["d_swish"], np_act("swish", dense("d_swish"), beta=2.0))
    close(outs["d_default"], np_act("tanh", dense("d_default"), beta=0.5))
    close(outs["d_linear"], dense("d_linear"))


# --- batch norm and dropout -------------------------------------------------------------------

@pytest.mark.parametrize("shape,momentum", [((8, 5), 0.9), ((4, 3, 3, 2), 0.8)])
def test_batchnorm_train_and_eval(shape, momentum):
    x1, x2 = rand(shape, 9, -1.0, 3.0), rand(shape, 10, -2.0, 1.0)
    net = Net(f"""
        name: bn
        input: {{shape: {list(shape[1:])}}}
        layers:
          - batchnorm: {{name: bn, momentum: {momentum}, epsilon: 0.001}}
        """, x1)
    p, eps = net.p("bn"), 1e-3
    axes = tuple(range(len(shape) - 1))

    def normalise(x, mean, var):
        return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]

    run_mean, run_var = np.zeros(shape[-1]), np.ones(shape[-1])
    for x in (x1, x2):
        xd = x.astype(np.float64)
        # Batch statistics with the biased variance; the running variance averages that same
        # biased value (Flax and Keras; PyTorch would average the unbiased n/(n-1) estimate).
        mean, var = xd.mean(axis=axes), xd.var(axis=axes)
        outs, stats = net.train(x)
        close(outs["bn"], normalise(xd, mean, var), atol=1e-4)
        run_mean = momentum * run_mean + (1 - momentum) * mean
        run_var = momentum * run_var + (1 - momentum) * var
        close(stats["bn"]["mean"], run_mean)
        close(stats["bn"]["var"], run_var)
        net.variables = {**net.variables, "batch_stats": stats}
        close(net.run(x)["bn"], normalise(xd, run_mean, run_var), atol=1e-4)


def test_batchnorm_without_scale_and_center():
    x = rand((6, 4), 11)
    net = Net("""
        name: bn
        input: {shape: [4]}
        layers:
          - batchnorm: {name: bn, scale: false, center: false}
        """, x)
    assert "bn" not in net.variables.get("params", {})
    outs, _ = net.train(x)
    xd = x.astype(np.float64)
    close(outs["bn"], (xd - xd.mean(0)) / np.sqrt(xd.var(0) + 1e-5), atol=1e-4)


def test_dropout():
    x = np.ones((2, 10_000), np.float32)
    net = Net("""
        name: drop
        input: {shape: [10000]}
        layers:
          - dropout: 0.3
        """, x)
    close(net.run(x)["dropout1"], x)  # evaluation: identity
    y1 = net.train(x, jax.random.key(1))[0]["dropout1"]
    y2 = net.train(x, jax.random.key(2))[0]["dropout1"]
    for y in (y1, y2):
        kept = y != 0
        np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
        assert abs(1 - kept.mean() - 0.3) < 0.02
    assert (y1 != y2).any()  # a fresh key draws a fresh mask


# --- tokens -------------------------------------------------------------------------------------

def test_embedding_and_one_hot():
    tokens = np.array([[0, 3, 9, 3, 1, 7], [2, 2, 5, 8, 0, 4]], np.int32)
    net = Net("""
        name: tok
        input: {shape: [6], dtype: int32}
        layers:
          - embedding: {name: emb, vocabulary: 10, dimension: 4}
          - one_hot: {name: oh, classes: 10, inputs: input}
          - embedding: {name: ones, vocabulary: 10, dimension: 2, init: ones, inputs: input}
        heads: {out: {from: emb}}
        """, tokens)
    outs = net.run(tokens)
    table = net.p("emb")["embedding"]
    assert table.shape == (10, 4)
    close(outs["emb"], table[tokens])
    np.testing.assert_array_equal(outs["oh"], np.eye(10)[tokens])
    # an unrandomised model keeps the requested initialiser
    raw = Net("""
        name: tok
        input: {shape: [6], dtype: int32}
        layers:
          - embedding: {name: ones, vocabulary: 10, dimension: 2, init: ones}
        """, tokens, randomize=False)
    np.testing.assert_array_equal(raw.run(tokens)["ones"], np.ones((2, 6, 2)))


# --- shapes and merges ----------------------------------------------------------------------------

def test_flatten_and_reshape():
    x = rand((2, 3, 4, 2), 12)
    net = Net("""
        name: shp
        input: {shape: [3, 4, 2]}
        layers:
          - flatten
          - reshape: {shape: [4, -1]}
          - reshape: {shape: [2, 3, 4], inputs: input, name: r2}
        """, x)
    outs = net.run(x)
    np.testing.assert_array_equal(outs["flatten1"], x.reshape(2, 24))
    np.testing.assert_array_equal(outs["reshape1"], x.reshape(2, 4, 6))
    np.testing.assert_array_equal(outs["r2"], x.reshape(2, 2, 3, 4))


def test_merges():
    xs = {k: rand((2, 3, 4), 13 + i) for i, k in enumerate("abc")}
    net = Net("""
        name: merges
        inputs: {a: {shape: [3, 4]}, b: {shape: [3, 4]}, c: {shape: [3, 4]}}
        layers:
          - add: {inputs: [a, b, c], name: s}
          - multiply: {inputs: [a, b], name: m}
          - concat: {inputs: [a, b, c], name: cat}
          - concat: {inputs: [a, b], name: cat0, axis: 0}
        heads: {out: {from: s}}
        """, xs)
    outs = net.run(xs)
    a, b, c = (xs[k].astype(np.float64) for k in "abc")
    close(outs["s"], a + b + c)
    close(outs["m"], a * b)
    np.testing.assert_array_equal(outs["cat"], np.concatenate([a, b, c], axis=-1))
    np.testing.assert_array_equal(outs["cat0"], np.concatenate([a, b], axis=1))


def test_residual_and_branches():
    x = rand((2, 6, 6, 3), 16)
    net = Net("""
        name: sugar
        input: {shape: [6, 6, 3]}
        layers:
          - residual:
              name: same
              body:
                - conv: {maps: 3, kernel: 3, padding: same, activation: relu}
                - conv: {maps: 3, kernel: 3, padding: same}
              activation: {elu: {beta: 2.0}}
          - residual:
              name: down
              body:
                - conv: {maps: 4, kernel: 3, stride: 2, padding: 1, activation: relu}
                - conv: {maps: 4, kernel: 3, padding: 1}
          - branches:
              name: br
              paths:
                - [conv: {maps: 2, kernel: 1}]
                - [conv: {maps: 3, kernel: 3, padding: same}, relu]
                - []
          - branches:
              name: br_add
              merge: add
              paths:
                - [conv: {maps: 9, kernel: 1, bias: false}]
                - []
        """, x)
    outs = net.run(x)
    one = [(0, 0)] * 2

    def conv(name, inp, stride=1, pads=None):
        p = net.p(name)
        k = p["kernel"].shape[:2]
        pads = pads if pads is not None else same_pads(inp.shape[1:3], k, (1, 1), (1, 1))
        return np_conv(inp, p["kernel"], p.get("bias"), (stride,) * 2, pads, (1, 1), 1)

    xd = x.astype(np.float64)
    body = conv("same.conv2", np.maximum(conv("same.conv1", xd), 0))
    same = np_act("elu", xd + body, beta=2.0)
    close(outs["same.activation"], same)

    body = conv("down.conv2", np.maximum(conv("down.conv1", same, 2, [(1, 1)] * 2), 0),
                pads=[(1, 1)] * 2)
    short = conv("down.projection", same, 2, one)  # 1x1, stride 2, linear, with bias
    down = short + body
    assert net.graph.nodes["down.add"].inputs == ["down.projection", "down.conv2"]
    close(outs["down.add"], down)

    br = np.concatenate([conv("br.path1.conv1", down, pads=one),
                         np.maximum(conv("br.path2.conv1", down), 0), down], axis=-1)
    close(outs["br.concat"], br)
    close(outs["br_add.add"], conv("br_add.path1.conv1", br, pads=one) + br)
    close(outs["head:output"], outs["br_add.add"])


# --- model-wide defaults ------------------------------------------------------------------------

def test_defaults_bias_false():
    x = rand((2, 4, 4, 2), 17)
    net = Net("""
        name: nobias
        input: {shape: [4, 4, 2]}
        defaults: {bias: false}
        layers:
          - conv: {name: c, maps: 3, kernel: 3}
          - flatten
          - dense: {name: d, units: 2}
          - dense: {name: d_bias, units: 2, bias: true, inputs: flatten1}
        """, x)
    assert set(net.p("c")) == {"kernel"} and set(net.p("d")) == {"kernel"}
    assert set(net.p("d_bias")) == {"kernel", "bias"}
    outs = net.run(x)
    c = np_conv(x, net.p("c")["kernel"], None, (1, 1), [(0, 0)] * 2, (1, 1), 1)
    close(outs["c"], c)
    close(outs["d"], c.reshape(2, -1) @ net.p("d")["kernel"])
    close(outs["d_bias"], c.reshape(2, -1) @ net.p("d_bias")["kernel"] + net.p("d_bias")["bias"])


def test_defaults_init():
    x = rand((2, 4, 4, 2), 18)
    net = Net("""
        name: inits
        input: {shape: [4, 4, 2]}
        defaults: {init: zeros, bias_init: {constant: 0.25}}
        layers:
          - conv: {name: c, maps: 3, kernel: 3}
          - conv: {name: c_ones, maps: 2, kernel: 1, init: ones, bias_init: zeros, inputs: input}
          - flatten: {inputs: input}
          - dense: {name: d, units: 2}
          - dense: {name: d_const, units: 2, init: {constant: 0.5}, inputs: flatten1}
        """, x, randomize=False)
    for name in ("c", "d"):
        p = net.p(name)
        assert not p["kernel"].any()
        np.testing.assert_array_equal(p["bias"], 0.25)
    np.testing.assert_array_equal(net.p("c_ones")["kernel"], 1.0)
    np.testing.assert_array_equal(net.p("c_ones")["bias"], 0.0)
    np.testing.assert_array_equal(net.p("d_const")["kernel"], 0.5)
    outs = net.run(x)
    np.testing.assert_array_equal(outs["c"], 0.25)
    np.testing.assert_array_equal(outs["d"], 0.25)
    close(outs["c_ones"], np.repeat(x.sum(-1, keepdims=True), 2, axis=-1))
    close(outs["d_const"], np.repeat(0.5 * x.reshape(2, -1).sum(-1, keepdims=True), 2, -1)
          + 0.25)
