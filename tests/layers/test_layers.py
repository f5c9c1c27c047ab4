"""Language v2 kinds against NumPy: broadcasting merges, dense on any rank, upsample,
conv_transpose (PyTorch's definition, by scattering each input value), prelu, scale,
parameter and the tensor plumbing; and their receptive fields by hand."""
from __future__ import annotations

import functools
import textwrap
from fractions import Fraction

import numpy as np
import pytest

from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture_text
from helpers import run_cli
from model.test_build import Net, close, rand

X = rand((2, 4, 5, 6), 11)


@functools.lru_cache(None)
def plumbing():
    net = Net("""
        name: v2
        input: {shape: [4, 5, 6]}
        layers:
          - pool: {global: true, keepdims: true, op: avg, name: squeeze}
          - dense: {units: 6, activation: hard_sigmoid, name: gate}
          - multiply: {inputs: [input, gate], name: se}
          - add: {inputs: [input, gate], name: plus}
          - dense: {units: 3, inputs: input, name: pointwise}
          - prelu: {inputs: input, name: pre}
          - prelu: {inputs: input, shared: true, slope: 0.5, name: pre1}
          - scale: {inputs: input, name: gamma}
          - slice: {inputs: input, start: 2, stop: 5, name: half}
          - slice: {inputs: input, axis: 0, start: -2, name: rows}
          - select: {inputs: input, axis: 1, index: -1, name: col}
          - permute: {inputs: input, axes: [2, 0, 1], name: chw}
          - channel_shuffle: {inputs: input, groups: 3, name: shuffled}
          - reshape: {inputs: input, shape: [20, 6], name: tokens}
          - parameter: {shape: [1, 6], name: cls}
          - concat: {inputs: [cls, tokens], axis: 0, name: with_cls}
          - select: {axis: 0, index: 0, name: first}
        heads: {out: {from: first}}
        """, X)
    return net, net.run(X)


def test_broadcasting_merges_and_pointwise_dense():
    net, outs = plumbing()
    x = X.astype(np.float64)
    gate = outs["gate"]
    assert gate.shape == (2, 1, 1, 6)
    p = net.p("gate")
    close(gate, np.clip(x.mean((1, 2), keepdims=True) @ p["kernel"] + p["bias"] + 3, 0, 6) / 6)
    close(outs["se"], x * gate)
    close(outs["plus"], x + gate)
    p = net.p("pointwise")
    close(outs["pointwise"], x @ p["kernel"] + p["bias"])
    assert net.graph.nodes["pointwise"].macs == 4 * 5 * 6 * 3


def test_learned_slopes_scales_and_tokens():
    net, outs = plumbing()
    x = X.astype(np.float64)
    a = net.p("pre")["slope"]
    assert a.shape == (6,)
    close(outs["pre"], np.where(x >= 0, x, a * x))
    assert net.p("pre1")["slope"].shape == (1,)
    close(outs["gamma"], x * net.p("gamma")["scale"])
    cls = net.p("cls")["value"]
    assert outs["with_cls"].shape == (2, 21, 6)
    close(outs["with_cls"][:, 0], np.broadcast_to(cls, (2, 6)))
    close(outs["with_cls"][:, 1:], x.reshape(2, 20, 6))
    close(outs["first"], np.broadcast_to(cls[0], (2, 6)))
    assert [net.graph.nodes[n].params for n in ("pre", "pre1", "gamma", "cls")] == [6, 1, 6, 6]


def test_tensor_plumbing():
    _, outs = plumbing()
    x = X.astype(np.float64)
    close(outs["half"], x[..., 2:5])
    close(outs["rows"], x[:, -2:])
    close(outs["col"], x[:, :, -1])
    close(outs["chw"], x.transpose(0, 3, 1, 2))
    # ShuffleNet: 3 groups of 2 channels [a0 a1 | b0 b1 | c0 c1] -> a0 b0 c0 a1 b1 c1
    close(outs["shuffled"], x[..., [0, 2, 4, 1, 3, 5]])


def test_slope_initial_values():
    net = Net("name: p\ninput: {shape: [3]}\nlayers:\n  - prelu: {slope: 0.3}\n"
              "heads: {out: {from: prelu1}}\n", rand((2, 3), 1), randomize=False)
    np.testing.assert_allclose(net.p("prelu1")["slope"], [0.3] * 3)


# --- going up in resolution -----------------------------------------------------------------

def np_linear_resize(x, size):
    """Half-pixel-centre linear interpolation (PyTorch's align_corners=False), axis by axis."""
    y = np.asarray(x, np.float64)
    for ax, out in enumerate(size, start=1):
        n = y.shape[ax]
        src = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        w = (src - lo).reshape([-1 if a == ax else 1 for a in range(y.ndim)])
        y = np.take(y, lo, axis=ax) * (1 - w) + np.take(y, hi, axis=ax) * w
    return y


def np_conv_transpose(x, k, b, stride, pad, out_pad, dilation, groups):
    """PyTorch's ConvTranspose by definition: input value i adds w[t]·x[i] at output
    i·stride + t·dilation − pad. k is archspec's kernel (*kernel, cin/groups, maps) applied
    over the dilated input, so PyTorch's w is k flipped in space."""
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    kernel, cout = k.shape[:n], k.shape[-1]
    w = np.flip(k, axis=tuple(range(n)))
    cin_g, cout_g = x.shape[-1] // groups, cout // groups
    out = [(x.shape[1 + a] - 1) * stride[a] - 2 * pad[a] + dilation[a] * (kernel[a] - 1)
           + out_pad[a] + 1 for a in range(n)]
    y = np.zeros((x.shape[0], *out, cout))
    for i in np.ndindex(*x.shape[1:-1]):
        for t in np.ndindex(*kernel):
            o = tuple(i[a] * stride[a] + t[a] * dilation[a] - pad[a] for a in range(n))
            if all(0 <= o[a] < out[a] for a in range(n)):
                for g in range(groups):
                    y[(slice(None), *o, slice(g * cout_g, (g + 1) * cout_g))] += (
                        x[(slice(None), *i, slice(g * cin_g, (g + 1) * cin_g))]
                        @ w[t][:, g * cout_g:(g + 1) * cout_g])
    return y + (0.0 if b is None else b)


@functools.lru_cache(None)
def going_up():
    net = Net("""
        name: up
        input: {shape: [4, 5, 6]}
        defaults: {activation: linear}
        layers:
          - upsample: {factor: 2, name: nearest}
          - upsample: {inputs: input, factor: [2, 3], method: bilinear, name: bilinear}
          - upsample: {inputs: input, size: [7, 3], method: linear, name: sized}
          - upsample: {inputs: input, size: [7, 8], name: exact}
          - upsample: {inputs: input, size: [7, 8], method: nearest_floor, name: floor}
          - conv_transpose: {inputs: input, maps: 4, kernel: 2, stride: 2, name: unet}
          - conv_transpose: {inputs: input, maps: 4, kernel: 3, stride: 2, padding: 1,
                             output_padding: 1, groups: 2, name: grouped}
          - conv_transpose: {inputs: input, maps: 2, kernel: [3, 2], stride: [1, 3],
                             dilation: [2, 1], padding: [2, 0], bias: false, name: dilated}
          - conv_transpose: {inputs: input, maps: 3, kernel: 3, stride: 2, padding: same,
                             name: same}
        heads: {out: {from: same}}
        """, X)
    return net, net.run(X)


def test_upsample_nearest_and_linear():
    _, outs = going_up()
    close(outs["nearest"], X.repeat(2, 1).repeat(2, 2))
    close(outs["bilinear"], np_linear_resize(X, (8, 15)))
    close(outs["sized"], np_linear_resize(X, (7, 3)))


def test_upsample_nearest_is_pytorchs_nearest_exact_and_nearest_floor_its_nearest():
    """To a size that is no multiple, the two differ: `nearest` reads the input under each
    output's centre, floor((i + 0.5) · in / out) (PyTorch's `nearest-exact`); `nearest_floor`
    floor(i · in / out) (PyTorch's `nearest`)."""
    _, outs = going_up()
    (h, w), (oh, ow) = X.shape[1:3], (7, 8)
    def centre(n_in, n_out):
        return np.floor((np.arange(n_out) + 0.5) * n_in / n_out).astype(int)

    exact = X[:, centre(h, oh)][:, :, centre(w, ow)]
    floor = X[:, np.arange(oh) * h // oh][:, :, np.arange(ow) * w // ow]
    close(outs["exact"], exact)
    close(outs["floor"], floor)
    assert not np.allclose(exact, floor)


@pytest.mark.parametrize("node, stride, pad, out_pad, dilation, groups", [
    ("unet", (2, 2), (0, 0), (0, 0), (1, 1), 1),
    ("grouped", (2, 2), (1, 1), (1, 1), (1, 1), 2),
    ("dilated", (1, 3), (2, 0), (0, 0), (2, 1), 1),
])
def test_conv_transpose_is_pytorchs(node, stride, pad, out_pad, dilation, groups):
    net, outs = going_up()
    p = net.p(node)
    want = np_conv_transpose(X, p["kernel"], p.get("bias"), stride, pad, out_pad, dilation,
                             groups)
    close(outs[node], want)
    assert net.graph.nodes[node].macs == 4 * 5 * 6 * int(np.prod(p["kernel"].shape[:2])) \
        * (p["kernel"].shape[-1] // groups)


def test_conv_transpose_same_doubles():
    net, outs = going_up()
    assert outs["same"].shape == (2, 8, 10, 3)  # input × stride, as Keras and Flax


def test_receptive_field_shrinks_its_jump_going_up():
    g = load_architecture_text(textwrap.dedent("""
        name: rf
        input: {shape: [16, 16, 1]}
        layers:
          - conv: {maps: 2, kernel: 3, stride: 2, name: down}
          - conv_transpose: {maps: 2, kernel: 2, stride: 2, name: up}
          - conv_transpose: {maps: 2, kernel: 3, stride: 2, name: up3}
          - upsample: {factor: 2, method: bilinear, name: bil}
          - conv: {maps: 2, kernel: 3, name: after}
        """))
    n = g.nodes
    assert (n["down"].rf, n["down"].jump) == ((3, 3), (2, 2))
    assert (n["up"].rf, n["up"].jump) == ((3, 3), (1, 1))           # one input per output
    assert (n["up3"].rf, n["up3"].jump) == ((4, 4), (Fraction(1, 2),) * 2)  # up to 2 inputs
    assert (n["bil"].rf, n["bil"].jump) == ((Fraction(9, 2),) * 2, (Fraction(1, 4),) * 2)
    assert n["after"].rf == (5, 5)


def errors_of(text: str) -> list:
    with pytest.raises(SpecErrors) as info:
        load_architecture_text(textwrap.dedent(text))
    return info.value.errors


def test_misuse_is_located():
    (e,) = errors_of("""
        name: gate
        input: {shape: [4, 4, 6]}
        layers:
          - pool: {global: true, keepdims: true}
          - dense: 3
          - multiply: {inputs: [input, dense1]}
        """)
    assert "broadcast" in e.message and "(1, 1, 6)" in e.hint and (e.pos.line, e.pos.col) == (7, 24)
    (e,) = errors_of("""
        name: up
        input: {shape: [4, 4, 6]}
        layers:
          - upsample: {factor: 2, size: 8}
        """)
    assert "exactly one of factor or size" in e.message
    (e,) = errors_of("""
        name: t
        input: {shape: [4, 4, 6]}
        layers:
          - conv_transpose: {maps: 2, kernel: 3, stride: 2, output_padding: 2}
        """)
    assert "output_padding" in e.message and e.expected == "0 to 1"
    (e,) = errors_of("""
        name: a
        input: {shape: [4]}
        layers:
          - dense: {units: 2, activation: prelu}
        """)
    assert "add `- prelu` after this one" in e.hint


@pytest.mark.parametrize("shape, options, field, message", [
    ("[6]", "kernel: 3", None, "conv_transpose needs a (length, channels), (height, width, "
                               "channels) or (time, height, width, channels) input"),
    ("[4, 4, 6]", "kernel: 3, stride: 0", "stride", "stride must be positive"),
    ("[4, 4, 6]", "kernel: [3, 0]", "kernel", "kernel must be positive"),
    ("[4, 4, 6]", "kernel: 3, dilation: [1, 2, 1]", "dilation",
     "dilation has 3 values but the input has 2 spatial axes"),
    ("[4, 4, 6]", "kernel: 3, padding: [[1, -1], [0, 0]]", "padding",
     "padding must not be negative"),
])
def test_conv_transpose_has_convs_geometry_checks(shape, options, field, message):
    line = f"  - conv_transpose: {{maps: 2, {options}}}"
    (e,) = errors_of(f"name: t\ninput: {{shape: {shape}}}\nlayers:\n{line}\n")
    assert e.message == message and e.pos.line == 4
    if field:  # the error points at the value of the option to blame
        assert e.pos.col == line.index(field + ":") + len(field) + 3
    else:
        assert e.hint is None


def test_a_forgotten_flatten_is_refused_before_training(tmp_path):
    arch = tmp_path / "no_flatten.yaml"
    arch.write_text("name: no_flatten\ninput: {shape: [8, 8, 1]}\nlayers:\n"
                    "  - conv: {maps: 4, kernel: 3}\n  - dense: {units: 10}\n")
    r = run_cli("train", arch, "--data", "digits", "--epochs", "1", cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "no_flatten.yaml:5:12: error: heads.output: the head gives a 6×6×10 map per " \
           "example, but the data has one target per example" in out
    assert "add `- flatten`" in out and "Traceback" not in out
    assert not (tmp_path / "runs").exists()


def test_receptive_field_is_global_after_a_global_pool_and_through_a_gate():
    from archspec.model.summary import Row, tree

    g = load_architecture_text(textwrap.dedent("""
        name: se
        input: {shape: [8, 8, 4]}
        blocks:
          se:
            layers:
              - pool: {global: true, keepdims: true, op: avg}
              - conv: {maps: 4, kernel: 1, activation: sigmoid}
              - multiply: {inputs: [_in, conv1]}
        layers:
          - conv: {maps: 4, kernel: 3, padding: same, name: features}
          - se: {name: gate}
          - conv: {maps: 4, kernel: 3, padding: same, name: after}
          - pool: {global: true}
          - dense: 2
        """))
    n = g.nodes
    assert n["features"].rf == (3, 3)
    assert [n[k].rf for k in ("gate.pool1", "gate.multiply1", "after", "pool1", "dense1")] \
        == ["global"] * 5
    rows = [Row(v.id, v.kind, v.shape, 0, 0, 0, v.rf, v.jump, v.id.count("."))
            for v in g.layers]
    block = next(r for r in tree(rows, 0) if r.name == "gate")
    assert (block.rf, block.jump) == ("global", None)  # the block's output node's, not conv1's


def test_an_input_shape_that_changes_the_rank_is_refused():
    (e,) = errors_of_shape("name: r\ninput: {shape: [8, 8, 3]}\nlayers: [conv: {maps: 2, "
                           "kernel: 3}]\n", (8, 8))
    assert (str(e.pos), e.message) == ("--input-shape 8,8",
                                       "--input-shape changes the input's rank")
    assert e.expected.startswith("3 axes") and e.hint.endswith("--input-shape 8,8,3")


def errors_of_shape(text: str, shape: tuple) -> list:
    with pytest.raises(SpecErrors) as info:
        load_architecture_text(text, input_shape=shape)
    return info.value.errors


def test_drop_path_drops_whole_examples_while_training():
    import jax

    x = np.ones((64, 3, 2), np.float32)
    net = Net("name: dp\ninput: {shape: [3, 2]}\nlayers:\n"
              "  - residual: {body: [dense: {units: 2, activation: linear}], drop_path: 0.5}\n"
              "heads: {out: {from: residual1}}\n", x)
    assert net.graph.nodes["residual1.drop_path"].inputs == ["residual1.dense1"]
    body = net.run(x)["residual1.dense1"]
    close(net.run(x)["residual1.drop_path"], body)               # evaluation: identity
    outs, _ = net.train(x, jax.random.key(3))
    kept = outs["residual1.drop_path"]
    per_example = kept.reshape(64, -1)
    dropped = np.all(per_example == 0, axis=1)
    assert 10 < dropped.sum() < 54                                # whole examples, about half
    close(kept[~dropped], 2.0 * body[~dropped])                   # kept ones scaled by 1/(1-p)
    close(outs["residual1.add"], x + kept)
