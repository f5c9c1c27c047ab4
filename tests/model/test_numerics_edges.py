"""Numerics and spec-language edge cases: batch/layer norm at a large mean, average pooling
with and without padding in the divisor, YAML merge keys, and over-long names."""
from __future__ import annotations

import textwrap
import time

import numpy as np
import pytest

from archspec.errors import SpecErrors
from archspec.spec.resolve import MAX_NAME, load_architecture_text
from archspec.spec.yaml_loader import load_yaml_text
from helpers import run_cli
from model.test_build import Net, close


def spec_errors(text: str, filename: str = "t.yaml"):
    with pytest.raises(SpecErrors) as exc:
        load_architecture_text(textwrap.dedent(text), filename)
    return exc.value.errors


def validate(tmp_path, text: str, name: str = "arch.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path, run_cli("validate", path)


# --- batch norm and layer norm at a large mean -----------------------------------------------
#
# float32 spaces numbers near 1e4 by 2**-10 ≈ 9.8e-4 (near 1e3 by 6.1e-5), so no float32
# batch norm that subtracts a float32 mean can get closer than half of that to
# (x - mean) / std with std 1, far from 1e-5; summing the batch for the mean adds a few such
# units. Measured on the batch below: 5.6e-3 at mean 1e4 and 9.4e-5 at 1e3 (bound: 8 units,
# 7.8e-3 and 4.9e-4). The one-pass variance E[x²] - E[x]² (Flax's default) was off by 1.0e3
# at mean 1e4 (a spread 318× too large) and by 0.40 at 1e3; its running variance by 10% / 3%.

def _ulp(v: float) -> float:
    return float(np.spacing(np.float32(v)))


@pytest.mark.parametrize("mean", [1e3, 1e4])
def test_batchnorm_two_pass_variance_at_large_mean(mean):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4, 4, 3))
    x[..., 0] += mean                       # channel 0: mean `mean`, std 1
    x[..., 1] = 5.0 + 0.01 * x[..., 1]      # channel 1: small spread
    x = x.astype(np.float32)
    net = Net("""
        name: bn
        input: {shape: [4, 4, 3]}
        layers:
          - batchnorm: {name: bn, momentum: 0.9, epsilon: 1.0e-5}
        """, x, randomize=False)            # scale 1, bias 0
    outs, stats = net.train(x)
    xd = x.astype(np.float64)
    mu, var = xd.mean(axis=(0, 1, 2)), xd.var(axis=(0, 1, 2))
    want = (xd - mu) / np.sqrt(var + 1e-5)
    err = np.abs(outs["bn"].astype(np.float64) - want).max(axis=(0, 1, 2))
    # within 8 float32 units of the mean (over std 1): 7.8e-3 at 1e4, 4.9e-4 at 1e3
    assert err[0] <= 8 * _ulp(mean), (err, 8 * _ulp(mean))
    assert err[2] <= 1e-5 * np.abs(want[..., 2]).max(), err  # an ordinary channel
    assert err[1] <= 1e-3, err  # std 0.01 around 5: float32 rounding of x is 5e-5 of the std
    # the normalised batch has unit spread (the one-pass form gave 318 at 1e4)
    assert abs(outs["bn"][..., 0].astype(np.float64).std() - 1.0) < 1e-4
    # running statistics: 0.9 · initial + 0.1 · batch value (biased variance)
    close(stats["bn"]["mean"], 0.1 * mu, rtol=1e-6, atol=1e-7)
    close(stats["bn"]["var"], 0.9 + 0.1 * var, rtol=1e-5, atol=1e-6)


def test_batchnorm_eval_after_large_mean_training_step():
    x = (1e4 + np.random.default_rng(4).standard_normal((32, 2))).astype(np.float32)
    net = Net("""
        name: bn
        input: {shape: [2]}
        layers:
          - batchnorm: {name: bn, momentum: 0.0}
        """, x, randomize=False)            # momentum 0: the running values are the batch's
    _, stats = net.train(x)
    xd = x.astype(np.float64)
    close(stats["bn"]["var"], xd.var(axis=0), rtol=1e-4, atol=0)
    net.variables = {**net.variables, "batch_stats": stats}
    want = (xd - xd.mean(0)) / np.sqrt(xd.var(0) + 1e-5)
    assert np.abs(net.run(x)["bn"] - want).max() <= 8 * _ulp(1e4)


def test_layernorm_two_pass_variance_at_large_mean():
    rng = np.random.default_rng(5)
    x = (1e4 + rng.standard_normal((8, 256))).astype(np.float32)
    net = Net("""
        name: ln
        input: {shape: [256]}
        layers:
          - layernorm: {name: ln}
        """, x, randomize=False)
    xd = x.astype(np.float64)
    want = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)
    got = net.run(x)["ln"].astype(np.float64)
    assert np.abs(got - want).max() <= 8 * _ulp(1e4)
    assert abs(got.std() - 1.0) < 1e-4


# --- average pooling: padding in the divisor or not -----------------------------------------

X33 = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)  # [[1 2 3] [4 5 6] [7 8 9]]

# size 3, stride 1, padding 1 on X33, worked by hand: every window sums the values it covers
SUMS = np.array([[12, 21, 16], [27, 45, 33], [24, 39, 28]], np.float64)
WITH_PAD = SUMS / 9                                           # window 3×3 always
WITHOUT_PAD = SUMS / np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]])  # values actually covered


def _pool_net(options: str, x):
    return Net(f"""
        name: p
        input: {{shape: {list(x.shape[1:])}}}
        layers:
          - pool: {{name: p, {options}}}
        """, x)


@pytest.mark.parametrize("flag,want", [("", WITH_PAD), (", count_include_pad: true", WITH_PAD),
                                       (", count_include_pad: false", WITHOUT_PAD)])
def test_avg_pool_padding_in_divisor_by_hand(flag, want):
    got = _pool_net(f"op: avg, size: 3, stride: 1, padding: 1{flag}", X33).run(X33)["p"]
    close(got[0, :, :, 0], want, rtol=1e-6, atol=1e-6)


def test_avg_pool_without_pad_hand_values():
    got = _pool_net("op: avg, size: 3, stride: 1, padding: 1, count_include_pad: false",
                    X33).run(X33)["p"][0, :, :, 0]
    assert got[0, 0] == pytest.approx(3.0)        # (1 + 2 + 4 + 5) / 4
    assert got[0, 1] == pytest.approx(3.5)        # (1 + 2 + 3 + 4 + 5 + 6) / 6
    assert got[1, 1] == pytest.approx(5.0)        # all nine
    with_pad = _pool_net("op: avg, size: 3, stride: 1, padding: 1", X33).run(X33)["p"]
    assert with_pad[0, 0, 0, 0] == pytest.approx(12 / 9)


def np_avg(x, k, s, pads, ceil, count_pad):
    """Average pool by explicit windows (PyTorch's rules); the divisor counts the window
    clipped to the padded input (count_pad) or only the input values it covers."""
    x = np.asarray(x, np.float64)
    n = x.ndim - 2
    sizes = x.shape[1:-1]
    out = []
    for i in range(n):
        span = sizes[i] + sum(pads[i]) - k[i]
        o = (-(-span // s[i]) if ceil else span // s[i]) + 1
        if ceil and (o - 1) * s[i] >= sizes[i] + pads[i][0]:
            o -= 1
        out.append(o)
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o in np.ndindex(*out):
        starts = [o[i] * s[i] - pads[i][0] for i in range(n)]
        data = tuple(slice(max(st, 0), min(st + k[i], sizes[i])) for i, st in enumerate(starts))
        win = x[(slice(None), *data, slice(None))]
        if count_pad:
            count = np.prod([min(st + k[i], sizes[i] + pads[i][1]) - st
                             for i, st in enumerate(starts)])
        else:
            count = np.prod([d.stop - d.start for d in data])
        y[(slice(None), *o, slice(None))] = win.sum(axis=tuple(range(1, n + 1))) / count
    return y


@pytest.mark.parametrize("options,k,s,pads,ceil", [
    ("size: 3, stride: 2, padding: 1", (3, 3), (2, 2), [(1, 1)] * 2, False),
    ("size: 2, stride: 1, padding: [[1, 0], [0, 1]]", (2, 2), (1, 1), [(1, 0), (0, 1)], False),
    ("size: 3, stride: 2, padding: same", (3, 3), (2, 2), [(0, 1), (1, 1)], False),
    ("size: 2, padding: 1, ceil_mode: true", (2, 2), (2, 2), [(1, 1)] * 2, True),
    ("size: 3, stride: 2, padding: 1, ceil_mode: true", (3, 3), (2, 2), [(1, 1)] * 2, True),
    ("size: 2", (2, 2), (2, 2), [(0, 0)] * 2, False),
])
@pytest.mark.parametrize("count_pad", [True, False])
def test_avg_pool_count_include_pad_matches_reference(options, k, s, pads, ceil, count_pad):
    x = np.random.default_rng(6).uniform(-2, 2, (2, 6, 5, 3)).astype(np.float32)
    got = _pool_net(f"op: avg, {options}, count_include_pad: {str(count_pad).lower()}",
                    x).run(x)["p"]
    close(got, np_avg(x, k, s, pads, ceil, count_pad))


def test_avg_pool_count_include_pad_1d_and_gradient():
    import jax
    import jax.numpy as jnp

    from archspec.layers.pooling_ops import window_pool

    x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)  # [1 2 3 4], size 3, stride 1, padding 1
    y = window_pool(x, "avg", (3,), (1,), [(1, 1)], (4,), count_pad=False)
    close(y[0, :, 0], [3 / 2, 6 / 3, 9 / 3, 7 / 2])
    g = jax.grad(lambda x: window_pool(x, "avg", (3,), (1,), [(1, 1)], (4,),
                                       count_pad=False).sum())(x)
    close(g[0, :, 0], [1 / 2 + 1 / 3, 1 / 2 + 2 / 3, 2 / 3 + 1 / 2, 1 / 3 + 1 / 2])


@pytest.mark.parametrize("options,message", [
    ("op: max, size: 3, padding: 1, count_include_pad: false",
     "count_include_pad only applies to op: avg, not op: max"),
    ("op: min, size: 2, count_include_pad: true",
     "count_include_pad only applies to op: avg, not op: min"),
    ("op: avg, global: true, count_include_pad: false",
     "count_include_pad does not apply to a global pool"),
    ("op: avg, adaptive: 2, count_include_pad: false",
     "count_include_pad does not apply to a adaptive pool"),
])
def test_count_include_pad_refused_where_meaningless(options, message):
    (err,) = spec_errors(f"""
        name: p
        input: {{shape: [6, 6, 2]}}
        layers:
          - pool: {{{options}}}
        """)
    assert err.message == message
    # located at the option's value, like every option error
    col = 1 + len("  - pool: {") + options.index("count_include_pad: ") + len("count_include_pad: ")
    assert (err.pos.file, err.pos.line, err.pos.col) == ("t.yaml", 5, col)
    assert err.hint and "remove count_include_pad" in err.hint


def test_count_include_pad_refused_through_validate(tmp_path):
    path, r = validate(tmp_path, """
        name: p
        input: {shape: [6, 6, 2]}
        layers:
          - pool: {op: max, size: 3, padding: 1, count_include_pad: false}
        """)
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert f"{path}:5:61: error: pool1" in out
    assert "count_include_pad only applies to op: avg, not op: max" in out
    assert "expected: op: avg" in out


def test_count_include_pad_shape_and_counts_unchanged():
    g = load_architecture_text(textwrap.dedent("""
        name: p
        input: {shape: [7, 7, 2]}
        layers:
          - pool: {name: a, op: avg, size: 3, stride: 2, padding: 1}
          - pool: {name: b, op: avg, size: 3, stride: 2, padding: 1, count_include_pad: false,
                   inputs: input}
        """))
    assert g.nodes["a"].shape == g.nodes["b"].shape == (4, 4, 2)
    assert g.nodes["a"].params == g.nodes["b"].params == 0


# --- YAML merge keys ------------------------------------------------------------------------

MERGE_ARCH = """\
name: merged
input: {shape: [16, 16, 3]}
layers:
  - conv: &base {maps: 8, kernel: 3, padding: same, activation: relu}
  - conv: {<<: *base, maps: 16, name: wide}
  - conv:
      <<: *base
      kernel: 5
      name: block_form
  - conv: &other {maps: 99, kernel: 1, stride: 2, padding: valid}
  - conv: {<<: [*base, *other], name: listed}
  - conv: {<<: [*other, *base], name: reversed}
  - flatten
  - dense: {units: 10, name: logits}
"""


def test_merge_keys_pass_validate(tmp_path):
    path, r = validate(tmp_path, MERGE_ARCH)
    assert r.returncode == 0, r.stdout + r.stderr


def test_merge_keys_follow_yaml_rules():
    g = load_architecture_text(MERGE_ARCH, "m.yaml")
    o = {n: g.nodes[n].opts for n in ("conv1", "wide", "block_form", "listed", "reversed")}
    assert (o["wide"].maps, o["wide"].kernel, o["wide"].padding) == (16, 3, "same")
    assert (o["block_form"].maps, o["block_form"].kernel) == (8, 5)
    # in a list, an earlier mapping wins; keys only in a later one still come in
    assert (o["listed"].maps, o["listed"].kernel, o["listed"].padding,
            o["listed"].stride) == (8, 3, "same", 2)
    assert (o["reversed"].maps, o["reversed"].kernel, o["reversed"].padding,
            o["reversed"].stride) == (99, 1, "valid", 2)
    assert g.nodes["wide"].shape == (16, 16, 16)
    assert g.nodes["block_form"].shape == (16, 16, 8)


def test_merged_keys_keep_the_anchor_position():
    doc = load_yaml_text(MERGE_ARCH, "m.yaml")
    wide = doc["layers"][1]["conv"]
    assert wide == {"maps": 16, "kernel": 3, "padding": "same", "activation": "relu",
                    "name": "wide"}
    lines = MERGE_ARCH.splitlines()

    def at(line, text):
        return line, lines[line - 1].index(text) + 1

    assert (wide.key_pos["maps"].line, wide.key_pos["maps"].col) == at(5, "maps: 16")  # own
    assert (wide.key_pos["kernel"].line, wide.key_pos["kernel"].col) == at(4, "kernel")
    assert (wide.val_pos["kernel"].line, wide.val_pos["kernel"].col) == at(4, "3, padding")


def test_error_in_merged_key_points_at_the_anchor(tmp_path):
    path, r = validate(tmp_path, """
        name: merged
        input: {shape: [4, 4, 2]}
        layers:
          - conv: &c {maps: 4, kernel: 1}
          - flatten
          - dense: {<<: *c, units: 3}
        """)
    assert r.returncode == 2
    out = r.stdout + r.stderr
    # `maps` came in from the anchor on line 5 (the file starts with an empty line)
    assert f"{path}:5:{1 + len('  - conv: &c {')}: error: dense1: unknown option 'maps'" in out
    assert f"{path}:5:{1 + len('  - conv: &c {maps: 4, ')}: error: dense1: unknown option " \
           "'kernel'" in out
    assert "2 errors" in out


def test_merge_key_errors_are_located():
    # a key written twice in the mapping itself is still a duplicate
    (err,) = spec_errors("""\
        name: m
        input: {shape: [8]}
        layers:
          - dense: &b {units: 4}
          - dense: {<<: *b, units: 3, units: 2}
        """.replace("        ", ""))
    assert err.message == "duplicate key 'units'" and err.pos.line == 5
    # the value of << must be a mapping or a list of mappings
    (err,) = spec_errors("""\
        name: m
        input: {shape: [8]}
        layers:
          - dense: {<<: 3, units: 2}
        """.replace("        ", ""))
    assert "merge key '<<' takes a mapping" in err.message
    assert (err.pos.line, err.pos.col) == (4, 17)
    # a mapping that merges itself
    (err,) = spec_errors("""\
        name: m
        input: {shape: [8]}
        layers:
          - dense: &self {units: 2, <<: *self}
        """.replace("        ", ""))
    assert "refers to a mapping that contains it" in err.message and err.pos.line == 4


def test_quoted_merge_key_is_a_plain_key():
    (err,) = spec_errors("""\
        name: m
        input: {shape: [8]}
        layers:
          - dense: &b {units: 4}
          - dense: {"<<": *b, units: 2}
        """.replace("        ", ""))
    assert "unknown option '<<'" in err.message


def test_merge_chains_do_not_blow_up():
    # each level merges the previous one twice: a document that doubles 40 times over
    lines = ["a0: &a0 {k: 1}"] + [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: {i}}}"
                                  for i in range(1, 41)]
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as exc:
        load_yaml_text("\n".join(lines), "bomb.yaml")
    assert time.perf_counter() - start < 5
    assert "refusing to load it" in exc.value.errors[0].message
    # a short chain loads, with every level's keys merged once
    doc = load_yaml_text("\n".join(lines[:6]), "chain.yaml")
    assert doc["a5"] == {"k": 1, **{f"k{i}": i for i in range(1, 6)}}


# --- names ----------------------------------------------------------------------------------

def _named(name: str) -> str:
    return (f"name: t\ninput: {{shape: [8, 8, 1]}}\nlayers:\n  - flatten\n"
            f"  - dense: {{units: 10, name: {name}}}\nheads:\n  c: {{output: softmax}}\n")


def test_overlong_layer_name_is_refused_by_validate(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(_named("a" * 100_000))
    r = run_cli("validate", path)
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert f"{path}:5:30: error: layers[1]: a name is at most {MAX_NAME} characters" in out
    assert f"expected: at most {MAX_NAME} characters" in out
    assert "(100,000 characters)" in out
    assert "hint:" in out
    assert "Traceback" not in out


def test_name_length_bound():
    assert MAX_NAME == 128
    load_architecture_text(_named("b" * MAX_NAME))
    (err,) = spec_errors(_named("b" * (MAX_NAME + 1)))
    assert f"({MAX_NAME + 1:,} characters)" in err.found


def test_overlong_block_and_head_names_are_refused():
    errs = spec_errors(f"""\
        name: t
        input: {{shape: [8]}}
        blocks:
          two: {{layers: [dense: 4, dense: 4]}}
        layers:
          - two: {{name: {"c" * 200}}}
          - residual: {{name: {"r" * 200}, body: [dense: 4]}}
        heads:
          {"h" * 200}: {{layers: [dense: 3]}}
        """.replace("        ", ""))
    assert sorted((e.pos.line, e.message) for e in errs) == [
        (6, f"a name is at most {MAX_NAME} characters"),
        (7, f"a name is at most {MAX_NAME} characters"),
        (9, f"a head name is at most {MAX_NAME} characters")]


@pytest.mark.slow
def test_longest_name_trains_and_checkpoints(tmp_path):
    arch = tmp_path / "long.yaml"
    arch.write_text(_named("n" * MAX_NAME))
    r = run_cli("train", arch, "--data", "digits", "--epochs", "1", "--output", tmp_path / "o")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert list((tmp_path / "o").glob("*/*/checkpoints/latest/*"))
