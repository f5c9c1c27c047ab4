"""lstm, gru, attention and positional against NumPy references written from their equations.

One model holds every layer (each reading the input), gets random weights in Flax's
parameter layout, runs once under `jax.jit`, and each node's output (sown under
"intermediates") is compared with a step-by-step NumPy computation using the same weights.
"""
from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archspec.model.build import OUT, build_model
from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture_text

T, F = 7, 5
SPEC = """
name: sequence_layers
input: {shape: [7, 5]}
layers:
  - lstm: {units: 4, return_sequences: true, name: lstm_seq, inputs: input}
  - lstm: {units: 3, name: lstm_last, inputs: input}
  - lstm: {units: 3, bias: false, return_sequences: true, name: lstm_nobias, inputs: input}
  - gru: {units: 4, return_sequences: true, name: gru_seq, inputs: input}
  - gru: {units: 3, name: gru_last, inputs: input}
  - gru: {units: 3, bias: false, return_sequences: true, name: gru_nobias, inputs: input}
  - attention: {heads: 2, dim: 6, name: att, inputs: input}
  - attention: {heads: 1, causal: true, name: att_causal, inputs: input}
  - attention: {heads: 5, bias: false, name: att_nobias, inputs: input}
  - positional: {mode: learned, max_len: 10, name: pos_learned, inputs: input}
  - positional: {mode: sinusoidal, name: pos_sin, inputs: input}
  - flatten: {inputs: att}
"""


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def close(got, want, tol=1e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


@pytest.fixture(scope="module")
def net():
    graph = load_architecture_text(SPEC)
    model = build_model(graph)
    x = np.random.default_rng(1).uniform(-2, 2, (3, T, F)).astype(np.float32)
    abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(0.0, 0.5, a.shape).astype(np.float32)),
        abstract["params"])
    x2 = x.copy()
    x2[:, -1] += 1.0  # a change at the last step only

    @jax.jit
    def run(p, x):
        return model.apply({"params": p}, x, mutable=["intermediates"])[1]["intermediates"]

    outs = {k[len(OUT):]: np.asarray(v[0]) for k, v in run(params, x).items()}
    outs2 = {k[len(OUT):]: np.asarray(v[0]) for k, v in run(params, x2).items()}
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    return graph, p, x.astype(np.float64), outs, outs2


# --- NumPy references, Flax's parameter layout -----------------------------------------------

def dense(p, x):
    return x @ p["kernel"] + p.get("bias", 0.0)


def np_lstm(p, x):
    c = h = np.zeros((len(x), p["hi"]["kernel"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = sigmoid(dense(p["ii"], xt) + dense(p["hi"], h))
        f = sigmoid(dense(p["if"], xt) + dense(p["hf"], h))
        g = np.tanh(dense(p["ig"], xt) + dense(p["hg"], h))
        o = sigmoid(dense(p["io"], xt) + dense(p["ho"], h))
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, 1)


def np_gru(p, x):
    h = np.zeros((len(x), p["hr"]["kernel"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        r = sigmoid(dense(p["ir"], xt) + dense(p["hr"], h))
        z = sigmoid(dense(p["iz"], xt) + dense(p["hz"], h))
        n = np.tanh(dense(p["in"], xt) + r * dense(p["hn"], h))
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out, 1)


def np_attention(p, x, causal=False):
    """softmax(Q Kᵀ / √d) V per head (d: features per head), then the output projection."""
    def proj(name):  # (B, T, heads, d)
        return np.einsum("btf,fhd->bthd", x, p[name]["kernel"]) + p[name].get("bias", 0.0)

    q, k, v = proj("query"), proj("key"), proj("value")
    d = q.shape[-1]
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d)
    if causal:
        t = x.shape[1]
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    heads = np.einsum("bhqk,bkhd->bqhd", w, v)
    return np.einsum("bqhd,hdf->bqf", heads, p["out"]["kernel"]) + p["out"].get("bias", 0.0)


# --- tests -----------------------------------------------------------------------------------

def test_lstm_matches_numpy(net):
    _, p, x, outs, _ = net
    close(outs["lstm_seq"], np_lstm(p["lstm_seq"]["cell"], x))
    close(outs["lstm_last"], np_lstm(p["lstm_last"]["cell"], x)[:, -1])
    assert "bias" not in p["lstm_nobias"]["cell"]["hi"]
    close(outs["lstm_nobias"], np_lstm(p["lstm_nobias"]["cell"], x))


def test_gru_matches_numpy(net):
    _, p, x, outs, _ = net
    close(outs["gru_seq"], np_gru(p["gru_seq"]["cell"], x))
    close(outs["gru_last"], np_gru(p["gru_last"]["cell"], x)[:, -1])
    assert "bias" not in p["gru_nobias"]["cell"]["hn"]
    close(outs["gru_nobias"], np_gru(p["gru_nobias"]["cell"], x))


def test_attention_matches_numpy(net):
    _, p, x, outs, outs2 = net
    close(outs["att"], np_attention(p["att"], x))
    close(outs["att_nobias"], np_attention(p["att_nobias"], x))
    close(outs["att_causal"], np_attention(p["att_causal"], x, causal=True))
    # without the mask the answer differs, and with it earlier steps ignore later ones
    assert not np.allclose(outs["att_causal"], np_attention(p["att_causal"], x), atol=1e-3)
    np.testing.assert_array_equal(outs2["att_causal"][:, :-1], outs["att_causal"][:, :-1])
    assert not np.allclose(outs2["att"][:, :-1], outs["att"][:, :-1])  # non-causal: they do
    # recurrent layers are causal by construction
    np.testing.assert_array_equal(outs2["lstm_seq"][:, :-1], outs["lstm_seq"][:, :-1])


def test_positional_matches_numpy(net):
    _, p, x, outs, _ = net
    assert p["pos_learned"]["embedding"].shape == (10, F)
    close(outs["pos_learned"], x + p["pos_learned"]["embedding"][None, :T])
    pos, i = np.arange(T)[:, None], np.arange(F)[None, :]
    angle = pos / 10000.0 ** ((i // 2 * 2) / F)
    close(outs["pos_sin"], x + np.where(i % 2 == 0, np.sin(angle), np.cos(angle))[None])


def test_counts_by_hand_and_against_flax(net):
    graph, p, *_ = net
    n = {node.id: node for node in graph.layers}
    lstm = lambda i, u, b=True: 4 * (i * u + u * u + (u if b else 0))
    gru = lambda i, u, b=True: 3 * (i * u + u * u) + (4 * u if b else 0)
    want = {"lstm_seq": lstm(F, 4), "lstm_last": lstm(F, 3), "lstm_nobias": lstm(F, 3, False),
            "gru_seq": gru(F, 4), "gru_last": gru(F, 3), "gru_nobias": gru(F, 3, False),
            # q, k, v: F·dim + dim each; out: dim·F + F
            "att": 3 * (F * 6 + 6) + 6 * F + F, "att_causal": 3 * (F * F + F) + F * F + F,
            "att_nobias": 4 * F * F, "pos_learned": 10 * F, "pos_sin": 0}
    for name, count in want.items():
        flax = sum(a.size for a in jax.tree_util.tree_leaves(p.get(name, {})))
        assert n[name].params == count == flax, (name, n[name].params, count, flax)
    assert n["lstm_seq"].macs == T * 4 * (F * 4 + 4 * 4)
    assert n["gru_last"].macs == T * 3 * (F * 3 + 3 * 3)
    assert n["att"].macs == 4 * T * F * 6 + 2 * T * T * 6
    assert n["lstm_seq"].shape == (T, 4) and n["lstm_last"].shape == (3,)
    assert n["att"].shape == n["pos_sin"].shape == (T, F)


def test_attention_dropout_only_while_training():
    graph = load_architecture_text(textwrap.dedent("""
        name: att_dropout
        input: {shape: [6, 8]}
        layers:
          - attention: {heads: 2, dropout: 0.5}
    """))
    model = build_model(graph)
    x = jnp.ones((2, 6, 8)) + jnp.arange(6.0)[None, :, None]
    v = model.init({"params": jax.random.key(0)}, x)
    ev = model.apply(v, x)["output"]
    np.testing.assert_array_equal(ev, model.apply(v, x)["output"])
    tr = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})["output"]
    assert not np.allclose(tr, ev)


def test_bf16_compute_runs():
    graph = load_architecture_text(textwrap.dedent("""
        name: seq_bf16
        input: {shape: [5], dtype: int32}
        layers:
          - embedding: {vocabulary: 20, dimension: 8}
          - positional: {mode: sinusoidal}
          - attention: {heads: 2, causal: true}
          - gru: {units: 4, return_sequences: true}
          - lstm: {units: 4}
          - dense: 3
    """))
    model = build_model(graph, compute_dtype=jnp.bfloat16)
    x = jnp.arange(10, dtype=jnp.int32).reshape(2, 5)
    v = model.init(jax.random.key(0), x)
    out = model.apply(v, x)["output"]
    assert out.shape == (2, 3) and bool(jnp.isfinite(out.astype(jnp.float32)).all())


@pytest.mark.parametrize("layer,message", [
    ("lstm: {units: 4}", "lstm reads a sequence of feature vectors"),
    ("attention: {heads: 3, dim: 8}", "dim 8 does not split into 3 heads"),
    ("positional: {max_len: 5}", "max_len 5 is shorter than the sequence"),
])
def test_shape_errors(layer, message):
    shape = "[4, 4, 2]" if layer.startswith("lstm") else "[6, 8]"
    text = f"name: bad\ninput: {{shape: {shape}}}\nlayers:\n  - {layer}\n"
    with pytest.raises(SpecErrors) as exc:
        load_architecture_text(text)
    assert message in str(exc.value.errors[0].message)
