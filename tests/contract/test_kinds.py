"""Every layer kind keeps its own contract: what it says about itself (shape, dtype, counts,
window, label, category, docs) matches what its real Flax build does. A new kind gets these
checks by declaring an `example`; a kind defined here, in a test, shows that the validator,
summary and diagram need no other edit to handle one."""
from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archspec.layers import REGISTRY, Layer
from archspec.layers.base import Example, Options, unregister

ROOT = Path(__file__).resolve().parents[2]
KINDS = sorted(REGISTRY)


def one_layer_spec(kind: str, ex: Example, options: dict | None = None) -> str:
    """A spec of the example's inputs and one `kind` layer (JSON is YAML)."""
    opts = dict(ex.options if options is None else options)
    spec = {"name": f"one_{kind}", "layers": [], "defaults": ex.defaults}
    inputs = {f"x{i}": {"shape": list(s), "dtype": ex.dtype} for i, s in enumerate(ex.shapes)}
    if len(inputs) == 1:
        spec["input"] = inputs["x0"]
    else:
        spec["inputs"] = inputs
        opts["inputs"] = list(inputs)
    spec["layers"].append({kind: opts} if opts else kind)
    return json.dumps(spec)


def resolve(kind: str, ex: Example):
    from archspec.spec.resolve import load_architecture_text

    graph = load_architecture_text(one_layer_spec(kind, ex))
    (node,) = graph.layers
    return graph, node


def _count(tree) -> int:
    return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(tree))


def real_build(graph, node, ex: Example):
    """(output, trainable count, state count) of the real Flax model on a batch of 2."""
    from archspec.model.build import OUT, build_model

    rng = np.random.default_rng(0)
    xs = {}
    for name, inp in graph.inputs.items():
        shape = (2, *inp.shape)
        xs[name] = (jnp.asarray(rng.integers(0, 3, shape), jnp.int32) if ex.dtype == "int32"
                    else jnp.asarray(rng.normal(size=shape), jnp.float32))
    inputs = xs if len(xs) > 1 else next(iter(xs.values()))
    model = build_model(graph)
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = model.init(keys, inputs, train=True)
    _, inter = model.apply(variables, inputs, train=False, mutable=["intermediates"])
    (y,) = inter["intermediates"][OUT + node.id]
    return (y, _count(variables.get("params", {}).get(node.id, {})),
            _count(variables.get("batch_stats", {}).get(node.id, {})))


@pytest.mark.parametrize("kind", KINDS)
def test_kind_keeps_its_contract(kind):
    from archspec.model.build import BuildDefaults
    from archspec.viz.graph import STYLE, describe

    layer = REGISTRY[kind]
    ex = layer.example
    graph, node = resolve(kind, ex)
    o, shapes = node.opts, [tuple(s) for s in ex.shapes]
    dtypes = [ex.dtype] * len(shapes)
    out = layer.out_shape(o, shapes, dtypes)
    d = graph.defaults
    defaults = BuildDefaults(d.activation, d.bias, d.init, d.bias_init)
    trainable, state = layer.params(o, shapes, out, defaults)

    y, real_trainable, real_state = real_build(graph, node, ex)
    assert tuple(y.shape[1:]) == tuple(out) == tuple(node.shape)
    assert str(y.dtype) == layer.out_dtype(o, dtypes) == node.dtype
    assert (real_trainable, real_state) == (trainable, state) == (node.params, node.state)

    macs = layer.macs(o, shapes, out)
    assert isinstance(macs, int) and macs >= 0
    window = layer.window(o, shapes)
    if window is not None:
        assert layer.spatial, f"{kind} has a window but is not spatial"
        assert len(window) == len(shapes[0]) - 1
        assert all(isinstance(k, int) and k >= 1 for k, _ in window)
        assert all(isinstance(s, (int, Fraction)) and s > 0 for _, s in window)
    if layer.token_table:  # the option that sizes its table of token ids
        assert layer.takes_tokens and ex.dtype == "int32"
        assert isinstance(getattr(o, layer.token_table), int)
    assert describe(node, graph).strip()
    assert layer.category in STYLE
    assert f"`{kind}`" in (ROOT / "docs" / "spec.md").read_text()


def test_docs_layer_reference_is_current():
    from archspec.layers import reference

    text = reference.DOC.read_text()
    assert reference.fill_tables(text) == text, f"docs/spec.md is stale: run `{reference.COMMAND}`"


def test_relu_family_comes_from_the_activation_table():
    """The health check watches exactly the nodes ending in a zeroing activation."""
    from archspec.layers.activation import ACTIVATIONS
    from archspec.model.build import relu_nodes
    from archspec.spec.resolve import load_architecture_text

    zeroing = {n for n, f in ACTIVATIONS.items() if f.zeroing}
    assert zeroing == {"relu", "relu6"}
    graph = load_architecture_text(json.dumps({
        "name": "acts", "input": {"shape": [6]}, "defaults": {"activation": "relu"},
        "layers": [{"dense": 4}, {"dense": {"units": 4, "activation": "tanh"}}, "relu6",
                   {"activation": "gelu"}, {"activation": {"relu": {"beta": 2.0}}},
                   {"leaky_relu": {"slope": 0.1}}, {"dense": {"units": 2,
                                                              "activation": "linear"}}]}))
    assert relu_nodes(graph) == {"dense1", "relu6_1", "activation2"}


def test_convs_in_a_scanned_block_use_the_in_loop_lowering(monkeypatch):
    from archspec.layers import conv_ops
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text

    calls = []

    def spy(*args, **kw):
        calls.append(True)
        return conv_ops.conv_general_dilated(*args, **kw, in_loop=True)

    monkeypatch.setattr(conv_ops, "conv_in_loop", spy)
    graph = load_architecture_text("""
name: rep
input: {shape: [6, 6, 2]}
blocks:
  unit:
    layers: [conv: {maps: 2, kernel: 3, padding: same}]
layers:
  - unit: {repeat: 3}
""")
    x = jnp.zeros((1, 6, 6, 2))
    jax.eval_shape(lambda: build_model(graph).init(jax.random.key(0), x))
    assert not calls  # unscanned: the plain lowering
    jax.eval_shape(lambda: build_model(graph, scan_blocks=True).init(jax.random.key(0), x))
    assert calls


# --- a kind defined outside the package -------------------------------------------------

class _ScaleModule:
    """A Flax module made on first use (importing flax at collection time is slow)."""

    cls = None

    @classmethod
    def get(cls):
        if cls.cls is None:
            import flax.linen as nn

            class Scale(nn.Module):
                @nn.compact
                def __call__(self, x):
                    return x * self.param("scale", nn.initializers.ones, (x.shape[-1],))

            cls.cls = Scale
        return cls.cls


@pytest.fixture
def toy_kind():
    class ToyOptions(Options):
        twice: bool = False

    class ChannelScale(Layer):
        kind = "channel_scale"
        doc = "Multiplies each channel by a learned factor."
        Options = ToyOptions
        category = "norm"
        example = Example({"twice": True}, [(3, 3, 4)])

        def params(self, o, shapes, out, defaults):
            return shapes[0][-1], 0

        def label(self, o, rank, default_activation=None):
            return "scale ×2" if o.twice else "scale"

        def build(self, o, xs, *, train, name, defaults):
            y = _ScaleModule.get()(name=name)(xs[0])
            return 2 * y if o.twice else y

    yield ChannelScale
    unregister("channel_scale")


def test_a_new_kind_needs_no_other_edit(toy_kind):
    from archspec.model.summary import summarize
    from archspec.spec.lint import head_warnings
    from archspec.spec.resolve import load_architecture_text
    from archspec.viz.graph import build_diagram, to_dot, to_mermaid

    assert REGISTRY["channel_scale"].kind == "channel_scale"
    text = """
name: toy
input: {shape: [4, 4, 3]}
layers:
  - conv: {maps: 5, kernel: 3, padding: same}
  - channel_scale: {twice: true, name: scale}
  - pool: {op: avg, global: true}
  - dense: {units: 2, name: logits}
heads: {y: {from: logits, output: softmax}}
"""
    graph = load_architecture_text(text)
    assert graph.nodes["scale"].params == 5 and graph.nodes["scale"].shape == (4, 4, 5)
    assert head_warnings(graph) == []
    s = summarize(graph)
    assert [r.params for r in s.rows if r.name == "scale"] == [5]
    d = build_diagram(graph)
    (box,) = [b for b in d.boxes if b.id == "scale"]
    assert box.lines[1] == "scale ×2" and box.category == "norm"
    assert "scale ×2" in to_dot(d) and "scale ×2" in to_mermaid(d)
    with pytest.raises(Exception) as exc:
        load_architecture_text(text.replace("twice: true", "twice: true, factor: 3"))
    assert "factor" in str(exc.value)
    y, trainable, _ = real_build(*resolve("channel_scale", toy_kind.example),
                                 toy_kind.example)
    assert trainable == 4 and tuple(y.shape) == (2, 3, 3, 4)


@pytest.fixture
def token_kind():
    class BucketOptions(Options):
        buckets: int

    class Buckets(Layer):
        kind = "buckets"
        takes_tokens = True
        token_table = "buckets"
        Options = BucketOptions
        example = Example({"buckets": 4}, [(3,)], dtype="int32")

        def out_shape(self, o, shapes, dtypes):
            return (*shapes[0], o.buckets)

        def out_dtype(self, o, dtypes):
            return "float32"

        def build(self, o, xs, *, train, name, defaults):
            return jax.nn.one_hot(xs[0], o.buckets)

    yield Buckets
    unregister("buckets")


def test_a_new_token_kind_is_let_read_ids_and_checked_against_the_vocabulary(token_kind):
    """A kind declares that it reads token ids and which option sizes its table: the
    validator lets ids into it (and into nothing that does not declare it), and training
    refuses a table smaller than the data's vocabulary, naming that option."""
    from types import SimpleNamespace

    from archspec.errors import SpecErrors
    from archspec.spec.resolve import load_architecture_text
    from archspec.train.setup import TrainError, check_vocabulary

    text = ("name: t\ninput: {shape: [6], dtype: int32}\nlayers:\n"
            "  - buckets: {buckets: 5, name: b}\n  - flatten\n  - dense: 2\n")
    graph = load_architecture_text(text)
    assert graph.nodes["b"].shape == (6, 5)
    with pytest.raises(SpecErrors, match="'dense' reads float values, but input holds int32"):
        load_architecture_text(text.replace("buckets: {buckets: 5, name: b}", "dense: 3"))
    check_vocabulary(graph, SimpleNamespace(vocabulary=["w"] * 5))
    with pytest.raises(TrainError) as info:
        check_vocabulary(graph, SimpleNamespace(vocabulary=["w"] * 7))
    assert info.value.message == "b has buckets 5 but the data has 7 token ids"
    assert info.value.hint == "set buckets: 7, or the data's vocabulary_size: 5"
