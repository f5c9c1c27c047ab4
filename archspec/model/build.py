"""Graph -> one Flax module. Every node with parameters becomes a submodule named by its
path, so the variables mirror the spec ("stage2.bottleneck1.conv3")."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from archspec.layers import REGISTRY, activation
from archspec.spec.graph import Graph


OUT = "out:"  # sown node outputs are named apart from the submodule of the same node
DEAD = "dead:"


def dead_fraction(y):
    """Fraction of units (channels) that are zero for every example and position.
    `y` is a ReLU-family output (>= 0), so a unit is alive iff its sum is > 0: a float sum
    vectorises on XLA:CPU where a boolean any() does not (measured: the any() cost ~2-4% of
    a CNN train step, the sum is within noise of no check; benchmarks/README.md)."""
    alive = jnp.sum(y, axis=tuple(range(y.ndim - 1)), dtype=jnp.float32) > 0
    return 1.0 - alive.astype(jnp.float32).mean()


def relu_nodes(graph: Graph) -> frozenset:
    """Nodes whose output passes through an activation whose units can die (exactly 0)."""
    out = set()
    default = graph.defaults.activation
    for node in graph.layers:
        act = REGISTRY[node.kind].output_activation(node.opts, default)
        if act is not None and activation.ACTIVATIONS[activation.parse(act)[0]].zeroing:
            out.add(node.id)
    return frozenset(out)


@dataclass(frozen=True)
class BuildDefaults:
    """Model-wide defaults from the spec plus how the model is being traced, handed to every
    kind's build."""

    activation: Any
    bias: bool
    init: Any
    bias_init: Any
    compute_dtype: Any = None
    in_loop: bool = False      # inside the scan over a BlockRun (conv_ops: `in_loop`)
    shapes_only: bool = False  # under eval_shape: initialisers may return zeros


def _freeze(value):
    return tuple((k, _freeze(v)) for k, v in value.items()) if isinstance(value, dict) else value


def _local(opts):
    """A node's options without the fields that name or wire it (equal across repeats)."""
    if opts is None:
        return None
    return repr(sorted((k, v) for k, v in opts.model_dump().items() if k not in ("name",
                                                                            "inputs")))


def _instance(layers, i, depth):
    """The nodes from position i that share the first `depth` parts of layers[i]'s id, and
    that prefix; None unless layers[i] starts such a group (and is nested deeper)."""
    parts = layers[i].id.split(".")
    if len(parts) <= depth:
        return None
    prefix = ".".join(parts[:depth]) + "."
    if i > 0 and layers[i - 1].id.startswith(prefix):
        return None
    j = i
    while j < len(layers) and layers[j].id.startswith(prefix):
        j += 1
    return prefix, layers[i:j]


def _signature(prefix, nodes):
    """What a block instance computes, independent of where it sits, and its one external
    input (None if it reads several nodes from outside)."""
    inside = {n.id for n in nodes}
    external = {i for n in nodes for i in n.inputs if i not in inside}
    sig = tuple((n.id[len(prefix):], n.kind, _local(n.opts), n.shape, n.dtype,
                 tuple(i[len(prefix):] if i in inside else "^" for i in n.inputs))
                for n in nodes)
    return sig, (next(iter(external)) if len(external) == 1 else None)


@dataclass
class BlockRun:
    """>= 2 consecutive identical block instances, built as one scan: `prefixes[k]`
    ("stage3.bottleneck7.") names the nodes of instance k."""

    prefixes: list
    instances: list

    @property
    def name(self) -> str:  # "stage3.bottleneck2..bottleneck36"
        parent = self.prefixes[0][:-1].rsplit(".", 1)[0] + "." if "." in self.prefixes[0][:-1] else ""
        return f"{self.prefixes[0][:-1]}..{self.prefixes[-1][len(parent):-1]}"




def scan_plan(graph: Graph) -> list:
    """The graph's layers as segments: a single node, or a BlockRun of >= 2 consecutive,
    identical, chained block instances (each reads only the previous one's output, and
    nothing outside reads inside the run but its last node)."""
    layers = graph.layers
    readers: dict[str, set] = {}
    for n in layers:
        for i in n.inputs:
            readers.setdefault(i, set()).add(n.id)
    heads = {h.node for h in graph.heads.values()}
    plan, i = [], 0
    max_depth = max((n.id.count(".") for n in layers), default=0)
    while i < len(layers):
        run = None
        for depth in range(1, max_depth + 1):
            first = _instance(layers, i, depth)
            if first is None:
                continue
            sig, ext = _signature(*first)
            if ext is None:
                continue
            run, j = BlockRun([first[0]], [first[1]]), i + len(first[1])
            while j < len(layers):
                nxt = _instance(layers, j, depth)
                if nxt is None:
                    break
                nsig, next_ext = _signature(*nxt)
                if nsig != sig or next_ext != run.instances[-1][-1].id:
                    break
                run.prefixes.append(nxt[0])
                run.instances.append(nxt[1])
                j += len(nxt[1])
            ids = {n.id for inst in run.instances for n in inst}
            last = run.instances[-1][-1].id
            leaks = any((readers.get(n.id, set()) - ids) or n.id in heads
                        for inst in run.instances for n in inst if n.id != last)
            if len(run.instances) >= 2 and not leaks:
                break
            run = None
        if run:
            plan.append(run)
            i += sum(len(inst) for inst in run.instances)
        else:
            plan.append(layers[i])
            i += 1
    return plan


class _Block(nn.Module):
    """One block instance, the body of a scan over identical repeats: reads the carry,
    returns its last node's output as the next carry. Submodules take the node ids local to
    the instance, so every instance has the same parameter tree (stacked by the scan)."""

    nodes: tuple
    prefix: str
    defaults: Any
    train: bool

    @nn.compact
    def __call__(self, x, _):
        values = {}
        defaults = replace(self.defaults, in_loop=True)
        for node in self.nodes:
            xs = [values.get(i, x) for i in node.inputs]
            y = REGISTRY[node.kind].build(node.opts, xs, train=self.train,
                                          name=node.id[len(self.prefix):], defaults=defaults)
            values[node.id] = y
        return y, None


class SpecModel(nn.Module):
    graph: Graph
    compute_dtype: Any = None  # e.g. jnp.bfloat16 for mixed precision; params stay float32
    # Opt-in: each run of identical repeated blocks (ResNet-152's 35 bottlenecks of stage 3)
    # is one jax.lax.scan over stacked parameters, so XLA compiles the block once. The
    # parameter tree changes (one entry per run, leading axis = repeats; same counts), and
    # nodes inside a run are neither sown (intermediates) nor health-checked.
    scan_blocks: bool = False
    remat_blocks: bool = False  # with scan_blocks: recompute each block in the backward pass
    shapes_only: bool = False   # set by abstract_variables: only shapes are wanted
    in_loop: bool = False       # traced inside a loop body (train.step.make_multi_step)
    # Layers an experiment freezes (`freeze:`): they run as in evaluation while training (a
    # batchnorm normalises with its running statistics and keeps them; dropout is off), as
    # PyTorch's module.eval() and timm's freeze_batch_norm_2d do. Their updates are zero
    # (engine/optim.py).
    frozen: frozenset = frozenset()

    @nn.compact
    def __call__(self, inputs, train: bool = False):
        """`inputs`: one array (single input) or a dict by input name.
        Returns a dict of head name -> raw outputs (logits, before the head's output function)."""
        g = self.graph
        d = g.defaults
        defaults = BuildDefaults(d.activation, d.bias, d.init, d.bias_init, self.compute_dtype,
                                 in_loop=self.in_loop, shapes_only=self.shapes_only)
        if not isinstance(inputs, dict):
            (name,) = g.inputs
            inputs = {name: inputs}
        values = {}
        watch = relu_nodes(g) if self.is_mutable_collection("health") else frozenset()
        for node in g.inputs.values():
            x = inputs[node.id]
            if node.dtype == "float32" and self.compute_dtype is not None:
                x = x.astype(self.compute_dtype)
            values[node.id] = x
        for node in (scan_plan(g) if self.scan_blocks else g.layers):
            if isinstance(node, BlockRun):  # identical repeated blocks: one scan
                first, prefix = node.instances[0], node.prefixes[0]
                inside = {n.id for n in first}
                ext = next(i for n in first for i in n.inputs if i not in inside)
                block = nn.remat(_Block) if self.remat_blocks else _Block
                scan = nn.scan(block, variable_axes={"params": 0, "batch_stats": 0},
                               split_rngs={"params": True, "dropout": True},
                               length=len(node.instances))
                y, _ = scan(tuple(first), prefix, defaults, train, name=node.name)(values[ext],
                                                                                  None)
                values[node.instances[-1][-1].id] = y
                continue
            xs = [values[i] for i in node.inputs]
            with jax.named_scope(node.id):  # names the layer of every traced operation
                y = REGISTRY[node.kind].build(node.opts, xs,
                                              train=train and node.id not in self.frozen,
                                              name=node.id, defaults=defaults)
            self.sow("intermediates", OUT + node.id, y)  # no-op unless asked for (summary, maps)
            if node.id in watch:
                self.sow("health", DEAD + node.id, dead_fraction(y))
            values[node.id] = y
        return {name: values[h.node] for name, h in g.heads.items()}


def build_model(graph: Graph, compute_dtype=None, scan_blocks: bool = False,
                remat_blocks: bool = False, frozen=frozenset()) -> SpecModel:
    return SpecModel(graph, compute_dtype, scan_blocks, remat_blocks, frozen=frozenset(frozen))


def example_inputs(graph: Graph, batch: int = 1, abstract: bool = True):
    """Inputs of the right shape and dtype: ShapeDtypeStructs (allocate nothing) or zeros."""
    out = {}
    for name, node in graph.inputs.items():
        dtype = jnp.int32 if node.dtype == "int32" else jnp.float32
        shape = (batch, *node.shape)
        out[name] = jax.ShapeDtypeStruct(shape, dtype) if abstract else jnp.zeros(shape, dtype)
    return out


def abstract_variables(model: SpecModel, graph: Graph, intermediates: bool = False):
    """Variable shapes through jax.eval_shape: nothing is allocated, and initialisers are
    traced as zeros (only shapes and dtypes come out). `intermediates`: also the sown node
    outputs, from the same single trace (summary needs both)."""
    from flax.core.scope import DenyList

    key = jax.random.key(0)
    mutable = True if intermediates else DenyList("intermediates")
    shapes = model.clone(shapes_only=True)
    return jax.eval_shape(lambda x: shapes.init({"params": key, "dropout": key}, x,
                                                train=False, mutable=mutable),
                          example_inputs(graph))
