"""What `archspec summary` reports: per-layer rows and totals. Parameter counts and shapes
come from the real Flax variables via jax.eval_shape; the resolver supplies MACs and
receptive fields, and its own counts must agree (checked, never trusted blindly)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import jax

from archspec.fmt import BYTES_PER_VALUE
from archspec.spec.graph import Graph


@dataclass
class Row:
    name: str
    kind: str
    shape: tuple | None
    params: int
    state: int
    macs: int
    rf: tuple | str | None  # per spatial axis, or "global"
    jump: tuple | None
    depth: int
    children: int = 0


@dataclass
class Summary:
    name: str
    rows: list[Row]
    trainable: int
    state: int
    param_bytes: int
    activation_bytes: int
    macs: int
    inputs: dict
    heads: dict
    source: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d


def _sizes(tree) -> dict[str, int]:
    return {k: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(v))
            for k, v in (tree or {}).items()}


def summarize(graph: Graph, depth: int | None = None) -> Summary:
    from archspec.model.build import OUT, abstract_variables, build_model

    model = build_model(graph)
    inter = variables = abstract_variables(model, graph, intermediates=True)  # one trace
    params, state = _sizes(variables.get("params")), _sizes(variables.get("batch_stats"))
    shapes = {k.removeprefix(OUT): v[0].shape[1:]  # none sown when every layer is repeat: 0
              for k, v in inter.get("intermediates", {}).items()}
    rows = []
    for node in graph.layers:
        flax_shape = tuple(shapes[node.id])
        if flax_shape != node.shape:  # the resolver and Flax must agree; a bug if not
            raise AssertionError(f"{node.id}: resolver shape {node.shape} != Flax {flax_shape}")
        rows.append(Row(node.id, node.kind, flax_shape, params.get(node.id, 0),
                        state.get(node.id, 0), node.macs, node.rf, node.jump,
                        node.id.count(".")))
    act = sum(math.prod(n.shape) for n in graph.nodes.values()) * BYTES_PER_VALUE
    trainable, st = sum(params.values()), sum(state.values())
    return Summary(
        graph.name, collapse(rows, depth), trainable, st, (trainable + st) * BYTES_PER_VALUE, act,
        sum(r.macs for r in rows),
        {k: {"shape": list(n.shape), "dtype": n.dtype} for k, n in graph.inputs.items()},
        {k: {"shape": list(h.shape or ()), "output": h.output, "loss_weight": h.loss_weight,
             "node": h.node} for k, h in graph.heads.items()},
        graph.source)


def collapse(rows: list[Row], depth: int | None) -> list[Row]:
    """Fold rows nested deeper than `depth` into one row per block instance."""
    if depth is None:
        return rows
    out: list[Row] = []
    for r in rows:
        if r.depth <= depth:
            out.append(r)
            continue
        group = ".".join(r.name.split(".")[:depth + 1])
        if out and out[-1].name == group and out[-1].kind == "block":
            g = out[-1]
            g.params, g.state, g.macs, g.children = (g.params + r.params, g.state + r.state,
                                                     g.macs + r.macs, g.children + 1)
            g.shape, g.rf, g.jump = r.shape, r.rf, r.jump  # the block's output node's
        else:
            out.append(Row(group, "block", r.shape, r.params, r.state, r.macs, r.rf, r.jump,
                           depth, 1))
    return out
