"""What `archspec summary` reports: per-layer rows and totals. Parameter counts and shapes
come from the real Flax variables via jax.eval_shape; the resolver supplies MACs and
receptive fields, and its own counts must agree (checked, never trusted blindly).

Rows form a tree: a block instance (or a head's layers) gets a header row before its layers,
carrying the block's output shape and the totals of the rows under it (`header`: true, so a
sum over the rows skips it); `--depth N` folds everything deeper than N into one row per
block instance, which then stands for its layers (`header`: false, `children` layers)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import jax

from archspec.fmt import BYTES_PER_VALUE
from archspec.spec.graph import Graph


@dataclass
class Row:
    name: str
    kind: str                    # a layer kind; "block" or "head" for a header or folded row
    shape: tuple | None
    params: int
    state: int
    macs: int
    rf: tuple | str | None  # per spatial axis, or "global"
    jump: tuple | None
    depth: int
    children: int = 0            # layers a header or folded row totals
    header: bool = False         # its layers follow as rows: its numbers are their totals
    parent: str = ""             # the header row this row sits under ("" at the top level)
    function: str | None = None  # an activation row's function: relu, elu(beta=2)
    train_only: bool = False     # computed only for training-only heads
    frozen: bool = False         # an experiment's `freeze:` names it: never updated


@dataclass
class Summary:
    name: str
    rows: list[Row]
    trainable: int
    state: int
    param_bytes: int
    activation_bytes: int
    macs: int                    # every layer, training-only heads included
    inputs: dict
    heads: dict
    source: str = ""
    extra: dict = field(default_factory=dict)
    inference_macs: int = 0      # without the layers only training-only heads need
    inference_params: int = 0
    frozen: int = 0              # parameters of frozen layers (not in `trainable`)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d

    @property
    def leaves(self) -> list[Row]:
        """The rows that are not totals of other rows: their sums are the totals."""
        return [r for r in self.rows if not r.header]


def _sizes(tree) -> dict[str, int]:
    return {k: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(v))
            for k, v in (tree or {}).items()}


def summarize(graph: Graph, depth: int | None = None, frozen=frozenset()) -> Summary:
    """The summary of a network; `frozen`: the layer ids an experiment freezes (their
    parameters are counted apart from the trainable ones)."""
    from archspec.model.build import OUT, abstract_variables, build_model

    model = build_model(graph)
    inter = variables = abstract_variables(model, graph, intermediates=True)  # one trace
    params, state = _sizes(variables.get("params")), _sizes(variables.get("batch_stats"))
    shapes = {k.removeprefix(OUT): v[0].shape[1:]  # none sown when every layer is repeat: 0
              for k, v in inter.get("intermediates", {}).items()}
    training = training_only(graph)
    rows = []
    for node in graph.layers:
        flax_shape = tuple(shapes[node.id])
        if flax_shape != node.shape:  # the resolver and Flax must agree; a bug if not
            raise AssertionError(f"{node.id}: resolver shape {node.shape} != Flax {flax_shape}")
        rows.append(Row(node.id, node.kind, flax_shape, params.get(node.id, 0),
                        state.get(node.id, 0), node.macs, node.rf, node.jump,
                        node.id.count("."), function=function_of(node),
                        train_only=node.id in training, frozen=node.id in frozen))
    act = sum(math.prod(n.shape) for n in graph.nodes.values()) * BYTES_PER_VALUE
    held = sum(n for k, n in params.items() if k in frozen)
    trainable, st = sum(params.values()) - held, sum(state.values())
    macs = sum(r.macs for r in rows)
    return Summary(
        graph.name, tree(rows, depth, head_scopes(graph)), trainable, st,
        (trainable + held + st) * BYTES_PER_VALUE, act, macs,
        {k: {"shape": list(n.shape), "dtype": n.dtype} for k, n in graph.inputs.items()},
        {k: {"shape": list(h.shape or ()), "output": h.output, "loss_weight": h.loss_weight,
             "node": h.node, "train_only": h.train_only} for k, h in graph.heads.items()},
        graph.source,
        inference_macs=macs - sum(r.macs for r in rows if r.train_only),
        inference_params=trainable + held - sum(r.params for r in rows if r.train_only),
        frozen=held)


def training_only(graph: Graph) -> set[str]:
    """The nodes only training-only heads read (directly or through other nodes): what
    inference does not compute."""
    def ancestors(heads) -> set[str]:
        seen, todo = set(), [h.node for h in heads]
        while todo:
            n = todo.pop()
            if n in seen or n not in graph.nodes:
                continue
            seen.add(n)
            todo += graph.nodes[n].inputs
        return seen

    heads = graph.heads.values()
    train = [h for h in heads if h.train_only]
    if not train:
        return set()
    return ancestors(train) - ancestors([h for h in heads if not h.train_only])


def head_scopes(graph: Graph) -> set[str]:
    """The heads whose layers live under the head's name."""
    return {name for name, h in graph.heads.items() if h.node.startswith(name + ".")}


def function_of(node) -> str | None:
    """An activation layer's function, with the parameters it changes: `relu`,
    `elu(beta=2)`; None for other layers."""
    from archspec.layers import REGISTRY
    from archspec.layers.activation import PARAMS, parse

    kind = REGISTRY.get(node.kind)
    if kind is None or kind.category != "activation":
        return None
    spec = kind.output_activation(node.opts, None)
    if spec is None:
        return node.kind  # a learned activation (prelu)
    name, p = parse(spec)
    changed = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
               for k, v in p.items() if v != PARAMS[name][k]]
    return name + (f"({', '.join(changed)})" if changed else "")


def tree(rows: list[Row], depth: int | None = None,
         heads: set[str] = frozenset()) -> list[Row]:
    """The layer rows with a header row before each block instance's layers; with `depth`,
    the instances nested at `depth` are folded into one row each (and deeper ones vanish
    into them). Every header and folded row totals the layers under it."""
    out: list[Row] = []
    stack: list[Row] = []  # the open header rows, outermost first, then a folded row
    for r in rows:
        parts = r.name.split(".")
        scopes = [".".join(parts[:i + 1]) for i in range(len(parts) - 1)]
        if depth is not None:
            scopes = scopes[:depth + 1]
        keep = 0
        while keep < min(len(stack), len(scopes)) and stack[keep].name == scopes[keep]:
            keep += 1
        del stack[keep:]
        for i in range(keep, len(scopes)):
            kind = "head" if i == 0 and scopes[i] in heads else "block"
            row = Row(scopes[i], kind, r.shape, 0, 0, 0, r.rf,
                      r.jump, i, header=depth is None or i < depth,
                      parent=stack[-1].name if stack else "", train_only=r.train_only)
            out.append(row)
            stack.append(row)
        folded = bool(stack) and not stack[-1].header
        if not folded:
            r.parent = stack[-1].name if stack else ""
            out.append(r)
        for g in stack:
            g.params, g.state, g.macs, g.children = (g.params + r.params, g.state + r.state,
                                                     g.macs + r.macs, g.children + 1)
            g.shape, g.rf, g.jump = r.shape, r.rf, r.jump  # the block's output node's
            g.train_only = g.train_only and r.train_only
    return out
