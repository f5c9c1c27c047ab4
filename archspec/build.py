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


def abstract_variables(model: SpecModel, graph: Graph):
    """Variable shapes through jax.eval_shape: nothing is allocated."""
    key = jax.random.key(0)
    return jax.eval_shape(lambda x: model.init({"params": key, "dropout": key}, x, train=False),
                          example_inputs(graph))
