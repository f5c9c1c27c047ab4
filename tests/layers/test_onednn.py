"""The optional oneDNN convolution backend (archspec/layers/onednn): values and both
gradients equal lax.conv_general_dilated and jax.grad of it over drawn configurations
(1-3 spatial dims, stride, asymmetric padding, dilation, groups); a built network's loss and
parameter gradients equal the XLA path; over a 4-device host mesh archspec's train step
runs each device's shard of the batch through oneDNN (no all-gather) and updates the
parameters as XLA does; the backend choice and its fallbacks.

Tests that run oneDNN skip when it cannot be built here (no `onednn-cpu-gomp` +
`onednn-devel-cpu-gomp` wheels, no g++, not a CPU): it is optional. The first run compiles the
handlers into $XDG_CACHE_HOME/archspec (~10 s); later runs load them."""
from __future__ import annotations

import contextlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jax import lax

from archspec.layers import conv_ops, onednn
from archspec.layers.onednn import build

LIB = build.load() if jax.default_backend() == "cpu" else "not a CPU backend"
needs_onednn = pytest.mark.skipif(isinstance(LIB, str), reason=f"oneDNN backend: {LIB}")



@contextlib.contextmanager
def backend(value: str):
    """$ARCHSPEC_CONV_BACKEND set for the block (hypothesis tests take no monkeypatch)."""
    old = os.environ.get(onednn.ENV)
    os.environ[onednn.ENV] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(onednn.ENV, None)
        else:
            os.environ[onednn.ENV] = old

def _close(a, b, rtol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(float(np.abs(b).max()), 1e-30))


@st.composite
def configs(draw):
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    ci = groups * draw(st.integers(1, 3))
    co = groups * draw(st.integers(1, 3))
    k = [draw(st.integers(1, 3)) for _ in range(n)]
    s = [draw(st.integers(1, 3)) for _ in range(n)]
    d = [draw(st.integers(1, 2)) for _ in range(n)]
    pads = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n)]
    size = [max(1, (kk - 1) * dd + 1 - lo - hi) + draw(st.integers(0, 8 - 2 * n))
            for kk, dd, (lo, hi) in zip(k, d, pads)]
    batch = draw(st.integers(1, 3))
    return (batch, *size, ci), (*k, ci // groups, co), tuple(s), tuple(pads), tuple(d), groups


@needs_onednn
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), seed=st.integers(0, 2**16))
def test_values_and_gradients_equal_xla(cfg, seed):
    xs, ws, s, pads, d, groups = cfg
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=xs), jnp.float32)
    w = jnp.asarray(rng.normal(size=ws), jnp.float32)
    dn = onednn.channels_last_numbers(len(xs))

    def ref(x, w):
        return lax.conv_general_dilated(x, w, s, pads, rhs_dilation=d, dimension_numbers=dn,
                                        feature_group_count=groups,
                                        precision=lax.Precision.HIGHEST)

    def got(x, w):
        return onednn.conv(x, w, s, pads, d, groups)

    y_ref = _same_values_and_gradients(got, ref, x, w, rng)
    assert y_ref.shape == onednn.output_shape(xs, ws, s, pads, d)


def _same_values_and_gradients(got, ref, x, w, rng):
    """got's values and both gradients (jitted) equal ref's, for a drawn output gradient;
    returns ref's values."""
    y_ref, vjp_ref = jax.vjp(ref, x, w)
    g = jnp.asarray(rng.normal(size=y_ref.shape), jnp.float32)
    y, vjp = jax.jit(lambda x, w: jax.vjp(got, x, w))(x, w)
    _close(y, y_ref)
    for a, b in zip(vjp(g), vjp_ref(g)):
        _close(a, b)
    return y_ref


@st.composite
def transposed_configs(draw):
    """A transposed convolution as lax writes it: the input dilated by the stride, padding
    between 0 and the kernel's extent less one (conv_transpose's, before cropping)."""
    xs, ws, s, _, d, groups = draw(configs())
    pads = tuple((draw(st.integers(0, (k - 1) * dd)), draw(st.integers(0, (k - 1) * dd)))
                 for k, dd in zip(ws, d))
    size = [max(n, (k - 1) * dd + 1 - lo - hi) for n, k, dd, (lo, hi) in zip(xs[1:-1], ws, d,
                                                                               pads)]
    return (xs[0], *size, xs[-1]), ws, s, pads, d, groups


@needs_onednn
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=transposed_configs(), seed=st.integers(0, 2**16))
def test_transposed_values_and_gradients_equal_xla(cfg, seed):
    """conv_ops' transposed convolution (lhs_dilation) on oneDNN: the input gradient of the
    strided convolution it transposes, with that convolution and its weight gradient as its
    own gradients."""
    xs, ws, s, pads, d, groups = cfg
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=xs), jnp.float32)
    w = jnp.asarray(rng.normal(size=ws), jnp.float32)
    dn = onednn.channels_last_numbers(len(xs))
    ones = (1,) * len(s)

    def ref(x, w):
        return lax.conv_general_dilated(x, w, ones, pads, lhs_dilation=s, rhs_dilation=d,
                                        dimension_numbers=dn, feature_group_count=groups,
                                        precision=lax.Precision.HIGHEST)

    def got(x, w):
        return conv_ops.conv_general_dilated(x, w, ones, pads, lhs_dilation=s,
                                             rhs_dilation=d, dimension_numbers=dn,
                                             feature_group_count=groups)

    assert onednn.supports(x, w, ones, pads, s, d, dn, groups)
    call = "archspec_onednn_conv_" + ("bwd_data" if max(s) > 1 else "fwd")  # stride 1: a conv
    with backend("onednn"):  # whatever `auto` measured for this shape on this machine
        assert call in jax.jit(got).lower(x, w).as_text()
        _same_values_and_gradients(got, ref, x, w, rng)


CONV_TRANSPOSE = """
name: up
input: {shape: [5, 4, 4]}
defaults: {activation: linear}
layers:
  - conv_transpose: {maps: 6, kernel: 3, stride: 2, padding: 1, output_padding: 1, groups: 2}
  - conv_transpose: {maps: 2, kernel: [3, 2], stride: [1, 3], dilation: [2, 1],
                     padding: [2, 0], bias: false, name: last}
heads: {y: {from: last, output: linear}}
"""


@pytest.mark.parametrize("backend", ["xla", "onednn"])
def test_conv_transpose_layer_is_the_plain_lowering(backend, monkeypatch):
    """The conv_transpose kind through conv_ops: under `xla` bit for bit the convolution
    over the stride-dilated input it wrote with lax before, under oneDNN within rounding.
    The padding of the equivalent convolution is worked by hand: kernel extent − 1 − padding
    on each side, plus output_padding on the high one (3 − 1 − 1 = 1, + 1; 5 − 1 − 2 = 2 and
    2 − 1 − 0 = 1)."""
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text

    if backend == "onednn" and isinstance(LIB, str):
        pytest.skip(f"oneDNN backend: {LIB}")
    monkeypatch.setenv(onednn.ENV, backend)
    model = build_model(load_architecture_text(CONV_TRANSPOSE))
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 5, 4, 4)), jnp.float32)
    params = model.init(jax.random.key(0), x)["params"]
    p1, p2 = params["conv_transpose1"], params["last"]
    lowered = jax.jit(model.apply).lower({"params": params}, x)
    assert ("archspec_onednn_conv_bwd_data" in lowered.as_text()) == (backend == "onednn")
    got = lowered.compile()({"params": params}, x)["y"]

    @jax.jit
    def old(x):
        dn = ("NHWC", "HWIO", "NHWC")
        h = lax.conv_general_dilated(x, p1["kernel"], (1, 1), [(1, 2), (1, 2)],
                                     lhs_dilation=(2, 2), rhs_dilation=(1, 1),
                                     dimension_numbers=dn, feature_group_count=2)
        h = h + p1["bias"]
        return lax.conv_general_dilated(h, p2["kernel"], (1, 1), [(2, 2), (1, 1)],
                                        lhs_dilation=(1, 3), rhs_dilation=(2, 1),
                                        dimension_numbers=dn)

    want = old(x)
    assert got.shape == want.shape == (2, 10, 23, 2)
    if backend == "xla":
        assert np.array_equal(np.asarray(got), np.asarray(want))
    else:
        _close(got, want)


@needs_onednn
def test_jit_remat_vmap_scan():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(3, 2, 6, 6, 4)), jnp.float32)  # a leading axis to map
    w = jnp.asarray(rng.normal(size=(3, 3, 4, 5)), jnp.float32)
    dn = onednn.channels_last_numbers(4)
    pads = ((1, 1), (1, 1))

    def f(conv):
        def one(x):
            return jnp.sum(jax.checkpoint(conv)(x, w) ** 2)
        return jax.jit(jax.grad(lambda x: jnp.sum(jax.vmap(one)(x)) + lax.scan(
            lambda c, xi: (c + one(xi), None), 0.0, x)[0]))

    got = f(lambda x, w: onednn.conv(x, w, (1, 1), pads, (1, 1)))(x)
    ref = f(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=dn,
                                                  precision=lax.Precision.HIGHEST))(x)
    _close(got, ref)


@needs_onednn
def test_overlapping_calls_of_one_primitive():
    """Independent convolutions of one shape run concurrently on XLA's threads and share a
    cached primitive: each call has its own scratchpad. (With oneDNN's library-managed
    scratchpad, shared between overlapping calls, this loop gave NaNs in some runs.) Every
    repetition gives the same bits as the first."""
    rng = np.random.default_rng(3)
    xs = [jnp.asarray(rng.normal(size=(8, 16, 16, 16)), jnp.float32) for _ in range(6)]
    w = jnp.asarray(rng.normal(size=(3, 3, 16, 16)), jnp.float32)
    dn = onednn.channels_last_numbers(4)
    pads = ((1, 1), (1, 1))

    def f(conv):
        return jax.jit(jax.grad(lambda w, xs: sum(jnp.sum(conv(x, w) ** 2) for x in xs),
                                (0, 1)))

    got = f(lambda x, w: onednn.conv(x, w, (1, 1), pads, (1, 1)))
    ref = jax.tree_util.tree_leaves(f(lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), pads, dimension_numbers=dn, precision=lax.Precision.HIGHEST))(w, xs))
    first = jax.tree_util.tree_leaves(got(w, xs))
    for _ in range(150):
        for a, b, c in zip(jax.tree_util.tree_leaves(got(w, xs)), ref, first):
            _close(a, b)
            np.testing.assert_array_equal(a, c)  # bitwise reproducible (exact resume)


NET = """
name: t
input: {shape: [12, 12, 3]}
defaults: {activation: relu, bias: false}
layers:
  - conv: {maps: 8, kernel: 3, padding: same}
  - batchnorm
  - pool: {op: max, size: 2}
  - residual:
      body:
        - conv: {maps: 8, kernel: 3, stride: 2, padding: 1}
        - batchnorm
        - relu
        - conv: {maps: 8, kernel: 3, padding: 1, groups: 2, dilation: 2}
      projection: {norm: batchnorm}
      activation: relu
  - conv: {maps: 6, kernel: 1}
  - pool: {op: avg, global: true}
  - dense: {units: 4, activation: linear, bias: true, name: logits}
heads: {y: {from: logits, output: softmax}}
"""


@needs_onednn
@pytest.mark.parametrize("spec", ["net", "benchmarks/specs/cnn6.yaml"])
def test_network_loss_and_gradients_equal_xla(spec, monkeypatch):
    from pathlib import Path

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture, load_architecture_text

    root = Path(__file__).resolve().parents[2]
    graph = (load_architecture_text(NET) if spec == "net"
             else load_architecture(root / spec, input_shape=(8, 8, 3)))
    model = build_model(graph)
    shape = (12, 12, 3) if spec == "net" else (8, 8, 3)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, *shape)), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)  # (compiling init is slow)
    rng = np.random.default_rng(5)
    variables = {"params": jax.tree_util.tree_map(
        lambda a: jnp.asarray(0.3 * rng.normal(size=a.shape), a.dtype), shapes["params"])}
    if "batch_stats" in shapes:
        variables["batch_stats"] = jax.tree_util.tree_map(
            lambda a: jnp.ones(a.shape, a.dtype), shapes["batch_stats"])
    head = next(iter(jax.eval_shape(model.apply, variables, x)))

    def loss_and_grads():
        def f(params):
            out, _ = model.apply({**variables, "params": params}, x, train=True,
                                 mutable=["batch_stats"])
            return jnp.mean(out[head] ** 2)
        lowered = jax.jit(jax.value_and_grad(f)).lower(variables["params"])
        return lowered.as_text(), lowered.compile()(variables["params"])

    monkeypatch.setenv(onednn.ENV, "onednn")
    text, (l_d, g_d) = loss_and_grads()
    assert "archspec_onednn_conv_bwd_weights" in text
    monkeypatch.setenv(onednn.ENV, "xla")
    text, (l_x, g_x) = loss_and_grads()
    assert "archspec_onednn" not in text
    assert float(l_d) == pytest.approx(float(l_x), rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g_d), jax.tree_util.tree_leaves(g_x)):
        assert float(jnp.linalg.norm(a - b)) <= 1e-5 * float(jnp.linalg.norm(b)) + 1e-12


def test_choice_and_fallbacks(monkeypatch):
    """Runs everywhere: without oneDNN `auto` is XLA (with the reason) and `onednn` is an
    error; a bad value is refused; unsupported convolutions never reach oneDNN."""
    monkeypatch.setattr(onednn, "_decided", {})
    monkeypatch.setattr(build, "_loaded", None)
    monkeypatch.setattr(build, "find_onednn", lambda: None)
    monkeypatch.delenv(onednn.ENV, raising=False)
    assert onednn.requested() == "auto"  # the default
    name, why = onednn.decide()
    assert name == "xla" and why
    assert onednn.describe().startswith("xla (")
    monkeypatch.setenv(onednn.ENV, "onednn")
    with pytest.raises(onednn.BackendError, match="cannot run"):
        onednn.decide()
    monkeypatch.setenv(onednn.ENV, "xla")
    assert onednn.decide() == ("xla", f"{onednn.ENV}=xla")
    monkeypatch.setenv(onednn.ENV, "fast")
    with pytest.raises(onednn.BackendError, match="not a convolution backend"):
        onednn.requested()
    # with auto falling back, conv_ops is lax's convolution
    monkeypatch.setenv(onednn.ENV, "auto")
    x, w = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 4))
    dn = onednn.channels_last_numbers(4)
    text = jax.jit(lambda x, w: conv_ops.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=dn)).lower(x, w).as_text()
    assert "archspec_onednn" not in text
    # what oneDNN is never given: bf16, input dilation with a window stride, NCHW,
    # negative padding, padding of the kernel's extent or more (its input gradient is wrong)
    ok = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), dimension_numbers=dn)
    assert onednn.supports(x, w, **ok)
    assert onednn.supports(x, w, **ok, lhs_dilation=(2, 2))  # a transposed convolution
    assert not onednn.supports(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), **ok)
    assert not onednn.supports(x, w, **{**ok, "window_strides": (2, 2)}, lhs_dilation=(2, 2))
    assert not onednn.supports(x, w, **{**ok, "padding": ((-1, 1), (1, 1))})
    assert not onednn.supports(x, w, **{**ok, "padding": ((3, 1), (1, 1))})
    assert not onednn.supports(x, w, **{**ok, "padding": ((3, 1), (1, 1))}, lhs_dilation=(2, 2))
    assert not onednn.supports(x, w, **{**ok, "dimension_numbers": lax.ConvDimensionNumbers(
        (0, 1, 2, 3), (3, 2, 0, 1), (0, 1, 2, 3))})


MESH_SCRIPT = """
import os, re, sys, jax, jax.numpy as jnp, numpy as np
from archspec.layers import onednn
from archspec.model.build import build_model
from archspec.spec.resolve import load_architecture_text
from archspec.experiment.config import Optimizer
from archspec.engine.optim import make_optimizer
from archspec.engine.step import HeadLoss, init_state, make_mesh, make_multi_step, make_train_step
assert jax.device_count() == 4 and onednn.active(), onednn.describe()  # auto, 4 devices
graph = load_architecture_text(sys.argv[1])
model, heads = build_model(graph), [HeadLoss("y", "categorical_crossentropy", "softmax", 1.0)]
tx, _ = make_optimizer(Optimizer(name="sgd", lr=1.0), 10)  # the update is the gradient
rng = np.random.default_rng(0)
x = rng.normal(size=(2, 8, 12, 12, 3)).astype(np.float32)
y, w = rng.integers(0, 4, size=(2, 8)).astype(np.int32), np.ones((2, 8), np.float32)
init = lambda: init_state(model, graph, tx, 0, jnp.zeros((1, 12, 12, 3)))  # steps donate it
leaves = lambda s: jax.tree_util.tree_leaves(jax.device_get(s.params))  # noqa: E731
os.environ[onednn.ENV] = "onednn"  # every convolution, whatever auto measured here
single, multi = make_train_step(model, heads, tx, make_mesh()), make_multi_step(
    model, heads, tx, make_mesh())
t_single = single.lower(init(), x[0], y[0], w[0]).compile().as_text()
t_multi = multi.lower(init(), x, y, w, np.ones(2, bool)).compile().as_text()
got = leaves(single(init(), x[0], y[0], w[0])[0])
got_twice = leaves(single(single(init(), x[0], y[0], w[0])[0], x[1], y[1], w[1])[0])
got_multi = leaves(multi(init(), x, y, w, np.ones(2, bool))[0])
os.environ[onednn.ENV] = "xla"
ref = leaves(make_train_step(model, heads, tx, make_mesh())(init(), x[0], y[0], w[0])[0])
for text in (t_single, t_multi):
    assert "archspec_onednn_conv_bwd_weights" in text
    assert re.search(r"f32\\[2,12,12,8\\]\\S* custom-call", text)  # conv 1: 2 examples a device
    assert "all-gather" not in text, [l for l in text.splitlines() if "all-gather" in l][:3]
start = leaves(init())
for a, b, p in zip(got, ref, start):  # one step: oneDNN's update is XLA's
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b - p) + 1e-7
for a, b in zip(got_multi, got_twice):  # the scanned steps are the single steps
    assert np.linalg.norm(a - b) <= 1e-6 * np.linalg.norm(b) + 1e-7
print("same")
"""


@needs_onednn
def test_batch_sharded_over_a_host_mesh():
    """`auto` over 4 host devices: archspec's train step and its scanned chunk of steps,
    batch sharded, run each device's examples through oneDNN (the partitioning rule: no
    all-gather of the activations, a psum of the weight gradients). One step updates the
    parameters as XLA's convolutions do; the scanned chunk equals its single steps.
    Two steps are not compared across backends: at lr 1 this network's second update moves
    by 28% when XLA alone starts it from a state perturbed by 1e-7 (measured), so
    float-rounding differences of the first step say nothing there."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    env.pop(onednn.ENV, None)
    proc = subprocess.run([sys.executable, "-c", MESH_SCRIPT, NET], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "same" in proc.stdout, proc.stderr[-3000:]


@needs_onednn
def test_auto_takes_onednn_where_it_was_measured_faster(monkeypatch, tmp_path):
    """`auto` routes each convolution by its verdict (layers/onednn/choice.py): XLA's where
    oneDNN was measured slower, oneDNN where faster or never measured; `onednn` takes it
    everywhere. calibrate() measures each configuration a trace meets once: the verdicts
    are kept in the cache file, and a second calibration measures nothing."""
    from archspec.layers.onednn import choice

    monkeypatch.setenv(choice.MEASURE_ENV, "1")  # the suite turns it off elsewhere
    monkeypatch.setattr(choice, "_path", lambda: tmp_path / "choices.json")
    monkeypatch.setattr(choice, "_verdicts", None)
    measured = []
    monkeypatch.setattr(choice, "_measure", lambda k: measured.append(k) or "[3, 3, 2, 4]" in k)
    x, w3, w1 = jnp.ones((2, 6, 6, 2)), jnp.ones((3, 3, 2, 4)), jnp.ones((1, 1, 2, 4))
    dn = onednn.channels_last_numbers(4)

    def net(x, w3, w1):
        return (conv_ops.conv_general_dilated(x, w3, (1, 1), "SAME", dimension_numbers=dn),
                conv_ops.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn))

    def calls():
        text = jax.jit(lambda *a: net(*a)).lower(x, w3, w1).as_text()  # traced afresh
        return text.count("archspec_onednn_conv_fwd")

    monkeypatch.setenv(onednn.ENV, "auto")
    assert calls() == 2  # nothing measured yet: oneDNN
    # a new function each time: JAX keeps traces by function, and a kept trace meets nothing
    trace = lambda: jax.eval_shape(lambda *a: net(*a), x, w3, w1)  # noqa: E731
    layers = {"onednn": [], "xla": []}  # no Flax layers here: see the bench test for names
    assert choice.calibrate(trace) == {"measured": 2, "onednn": 1, "xla": 1, "layers": layers}
    assert calls() == 1  # the 3x3 on oneDNN, the 1x1 on XLA
    assert len(json.loads((tmp_path / "choices.json").read_text())) == 2
    monkeypatch.setattr(choice, "_verdicts", None)  # a new process reads the file
    assert choice.calibrate(trace) == {"measured": 0, "onednn": 1, "xla": 1, "layers": layers}
    assert len(measured) == 2
    monkeypatch.setenv(choice.MEASURE_ENV, "0")
    assert choice.calibrate(trace) is None
    monkeypatch.setenv(onednn.ENV, "onednn")
    assert calls() == 2


@needs_onednn
@pytest.mark.parametrize("slower", ["onednn", "xla"])
def test_a_network_slower_with_onednn_runs_on_xla(slower, monkeypatch, tmp_path):
    """A convolution oneDNN wins alone can still slow the step it runs in (the MNIST-1D
    CNN). calibrate() then times the compiled step with the per-convolution plan against
    XLA everywhere, and keeps the faster: here a step whose time is set by how many oneDNN
    calls its compiled program holds. The network's verdict is kept like the others."""
    from archspec.layers.onednn import choice
    from archspec.ui.progress import conv_choice_line

    monkeypatch.setenv(choice.MEASURE_ENV, "1")
    monkeypatch.setenv(onednn.ENV, "auto")
    monkeypatch.setattr(choice, "_path", lambda: tmp_path / "choices.json")
    monkeypatch.setattr(choice, "_verdicts", None)
    monkeypatch.setattr(choice, "_on_xla", set())
    monkeypatch.setattr(choice, "_measure", lambda k: "[3, 3, 2, 4]" in k)
    x, w3, w1 = jnp.ones((2, 6, 6, 2)), jnp.ones((3, 3, 2, 4)), jnp.ones((1, 1, 2, 4))
    dn = onednn.channels_last_numbers(4)

    def net(x, w3, w1):
        return (conv_ops.conv_general_dilated(x, w3, (1, 1), "SAME", dimension_numbers=dn),
                conv_ops.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn))

    def calls():
        text = jax.jit(lambda *a: net(*a)).lower(x, w3, w1).as_text()  # traced afresh
        return text.count("archspec_onednn_conv_fwd")

    compiled = []

    def compile_step():
        n = calls()
        compiled.append(n)
        with_onednn = n > 0
        return lambda: time.sleep(0.004 if with_onednn == (slower == "onednn") else 0.001)

    trace = lambda: jax.eval_shape(lambda *a: net(*a), x, w3, w1)  # noqa: E731
    counts = choice.calibrate(trace, compile_step)
    assert sorted(compiled) == [0, 1]  # the plan (the 3x3 on oneDNN) and XLA everywhere
    if slower == "onednn":
        assert counts == {"measured": 3, "onednn": 0, "xla": 2, "network": "xla", "alone": 1,
                          "layers": {"onednn": [], "xla": []}}  # no Flax layers here
        assert calls() == 0
        assert conv_choice_line(counts).startswith(
            "convolutions: XLA for all 2 shapes (oneDNN won 1 of them alone but slowed")
    else:
        assert counts == {"measured": 3, "onednn": 1, "xla": 1,
                          "layers": {"onednn": [], "xla": []}}
        assert calls() == 1
    kept = json.loads((tmp_path / "choices.json").read_text())
    assert [v for k, v in kept.items() if k.startswith("net:")] == [slower == "xla"]
    monkeypatch.setattr(choice, "_verdicts", None)  # a new process: nothing timed again
    monkeypatch.setattr(choice, "_on_xla", set())
    assert choice.calibrate(trace, compile_step)["measured"] == 0 and len(compiled) == 2
    assert calls() == (0 if slower == "onednn" else 1)


@needs_onednn
def test_a_measurement_times_both_backends_of_one_configuration(monkeypatch):
    """The real measurement runs (a verdict either way) and never raises."""
    from archspec.layers.onednn import choice

    monkeypatch.setenv(onednn.ENV, "auto")
    k = choice.key((4, 8, 8, 3), (3, 3, 3, 8), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, False)
    assert isinstance(choice._measure(k), bool)
    assert choice.key((None, 8, 8, 3), (3, 3, 3, 8), (1, 1), ((1, 1), (1, 1)), (1, 1), 1,
                      False) is None  # a symbolic batch is never measured


@needs_onednn
def test_the_choice_names_the_layers_each_backend_runs(monkeypatch, tmp_path):
    """`archspec bench` lists which layers' convolutions run on oneDNN and which on XLA:
    the names come from the Flax modules the trace meets (the spec's node ids)."""
    from archspec.layers.onednn import choice
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    from archspec.train.setup import choose_convolutions

    monkeypatch.setenv(choice.MEASURE_ENV, "1")
    monkeypatch.setenv(onednn.ENV, "auto")
    monkeypatch.setattr(choice, "_path", lambda: tmp_path / "choices.json")
    monkeypatch.setattr(choice, "_verdicts", None)
    monkeypatch.setattr(choice, "_on_xla", set())
    monkeypatch.setattr(choice, "_measure", lambda k: "[3, 3, 2, 4]" in k)
    monkeypatch.setattr(choice, "_faster_in_context", lambda compile_step: True)
    graph = load_architecture_text("""
        name: two
        input: {shape: [6, 6, 2]}
        layers:
          - conv: {maps: 4, kernel: 3, padding: 1, name: wide}
          - conv: {maps: 4, kernel: 1, inputs: input, name: point}
          - add: {inputs: [wide, point]}
          - flatten
          - dense: 3
        """)
    counts = choose_convolutions(build_model(graph), graph, 2, 2)
    assert counts["layers"] == {"onednn": ["wide"], "xla": ["point"]}
