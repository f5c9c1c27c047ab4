"""Graph -> one Flax module. Every node with parameters becomes a submodule named by its
path, so the variables mirror the spec ("stage2.bottleneck1.conv3")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from archspec.graph import Graph
from archspec.layers import REGISTRY, activation


OUT = "out:"  # sown node outputs are named apart from the submodule of the same node
DEAD = "dead:"
RELU_ZEROING = ("relu", "relu6")  # activations whose units can die (output exactly 0)


def dead_fraction(y):
    """Fraction of units (channels) that are zero for every example and position.
    `y` is a ReLU-family output (>= 0), so a unit is alive iff its sum is > 0: a float sum
    vectorises on XLA:CPU where a boolean any() does not (measured: the any() cost ~2-4% of
    a CNN train step, the sum is within noise of no check; benchmarks/README.md)."""
    alive = jnp.sum(y, axis=tuple(range(y.ndim - 1)), dtype=jnp.float32) > 0
    return 1.0 - alive.astype(jnp.float32).mean()


def relu_nodes(graph: Graph) -> frozenset:
    """Nodes whose output passes through a ReLU-family activation that can die."""
    from archspec.layers.activation import parse

    out = set()
    default = graph.defaults.activation
    for node in graph.layers:
        act = None
        if node.kind in RELU_ZEROING:
            act = node.kind
        elif node.kind == "activation":
            act = node.opts.function
        elif node.kind in ("dense", "conv"):
            act = node.opts.activation if node.opts.activation is not None else default
        if act is not None and parse(act)[0] in RELU_ZEROING:
            out.add(node.id)
    return frozenset(out)


@dataclass(frozen=True)
class BuildDefaults:
    """Model-wide defaults from the spec plus run-time choices (compute precision)."""

    activation: Any
    bias: bool
    init: Any
    bias_init: Any
    compute_dtype: Any = None


def _freeze(value):
    return tuple((k, _freeze(v)) for k, v in value.items()) if isinstance(value, dict) else value


class SpecModel(nn.Module):
    graph: Graph
    compute_dtype: Any = None  # e.g. jnp.bfloat16 for mixed precision; params stay float32

    @nn.compact
    def __call__(self, inputs, train: bool = False):
        """`inputs`: one array (single input) or a dict by input name.
        Returns a dict of head name -> raw outputs (logits, before the head's output function)."""
        g = self.graph
        d = g.defaults
        defaults = BuildDefaults(d.activation, d.bias, d.init, d.bias_init, self.compute_dtype)
        if not isinstance(inputs, dict):
            (name,) = g.inputs
            inputs = {name: inputs}
        values = {}
        watch = relu_nodes(g) if self.is_mutable_collection("health") else frozenset()
        for node in g.nodes.values():
            if node.kind == "input":
                x = inputs[node.id]
                if node.dtype == "float32" and self.compute_dtype is not None:
                    x = x.astype(self.compute_dtype)
                values[node.id] = x
                continue
            xs = [values[i] for i in node.inputs]
            y = REGISTRY[node.kind].build(node.opts, xs, train=train, name=node.id,
                                          defaults=defaults)
            self.sow("intermediates", OUT + node.id, y)  # no-op unless asked for (summary, maps)
            if node.id in watch:
                self.sow("health", DEAD + node.id, dead_fraction(y))
            values[node.id] = y
        return {name: values[h.node] for name, h in g.heads.items()}


def build_model(graph: Graph, compute_dtype=None) -> SpecModel:
    return SpecModel(graph, compute_dtype)


def example_inputs(graph: Graph, batch: int = 1, abstract: bool = True):
    """Inputs of the right shape and dtype: ShapeDtypeStructs (allocate nothing) or zeros."""
    out = {}
    for name, node in graph.inputs.items():
        dtype = jnp.int32 if node.dtype == "int32" else jnp.float32
        shape = (batch, *node.shape)
        out[name] = jax.ShapeDtypeStruct(shape, dtype) if abstract else jnp.zeros(shape, dtype)
    return out


def output_function(name: str, x):
    """A head's output function: probabilities, positive values or unbounded values."""
    if name == "linear":
        return x
    return activation.apply(name, x.astype(jnp.float32))


def abstract_variables(model: SpecModel, graph: Graph, intermediates: bool = False):
    """Variable shapes through jax.eval_shape: nothing is allocated, and initialisers are
    traced as zeros (only shapes and dtypes come out). `intermediates`: also the sown node
    outputs, from the same single trace (summary needs both)."""
    from flax.core.scope import DenyList

    from archspec.layers import init

    key = jax.random.key(0)
    mutable = True if intermediates else DenyList("intermediates")
    init.SHAPES_ONLY[0] = True
    try:
        return jax.eval_shape(lambda x: model.init({"params": key, "dropout": key}, x,
                                                   train=False, mutable=mutable),
                              example_inputs(graph))
    finally:
        init.SHAPES_ONLY[0] = False
