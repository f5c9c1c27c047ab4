"""Inference on one expanded node: its shape, dtype, parameter and state counts, MACs and
receptive field, from its parents' through the layer kind's protocol."""
from __future__ import annotations

from archspec.errors import ErrorCollector
from archspec.fmt import fmt_shape
from archspec.layers.base import GLOBAL, ShapeError
from archspec.layers.init import check_init
from archspec.spec.graph import Graph, Node
from archspec.spec.yaml_loader import YMap


def infer(graph: Graph, errors: ErrorCollector, node: Node, kind, value) -> None:
    """Fill in `node`; a ShapeError is reported at the option it names (`value` locates it)
    and leaves the shape unknown, so that later layers do not cascade."""
    parents = [graph.nodes[i] for i in node.inputs]
    if any(p.shape is None for p in parents):
        return  # an earlier error; do not cascade
    shapes, dtypes = [p.shape for p in parents], [p.dtype for p in parents]
    try:
        tokens = [p for p in parents if p.dtype.startswith("int")]
        if tokens and (not kind.takes_tokens or len(tokens) < len(parents)):
            raise ShapeError(f"'{kind.kind}' reads float values, but {tokens[0].id} holds "
                             f"{tokens[0].dtype} token ids", expected="a float32 input",
                             found=f"{tokens[0].id}: {tokens[0].dtype} "
                                   f"{fmt_shape(tokens[0].shape)}",
                             hint="token ids go through an `embedding` (or `one_hot`) "
                                  "first; only flatten, reshape and concat keep them",
                             field="inputs")
        for field in ("init", "bias_init"):  # every kind's initialisers, checked once
            check_init(getattr(node.opts, field, None), field)
        node.shape = tuple(kind.out_shape(node.opts, shapes, dtypes))
        node.dtype = kind.out_dtype(node.opts, dtypes)
        node.params, node.state = kind.params(node.opts, shapes, node.shape, graph.defaults)
        node.macs = kind.macs(node.opts, shapes, node.shape)
        node.rf, node.jump = receptive(kind, node, parents, shapes)
    except ShapeError as exc:
        pos = value.val_pos.get(exc.field, node.pos) if isinstance(value, YMap) else node.pos
        inputs = ", ".join(f"{p.id} {fmt_shape(p.shape)}" for p in parents)
        errors.add(exc.message, pos, f"{node.id} (input: {inputs})",
                   expected=exc.expected, found=exc.found, hint=exc.hint)
        node.shape = None


def receptive(kind, node: Node, parents: list[Node], shapes):
    """(receptive field, jump) per spatial axis; (GLOBAL, None) once a value depends on the
    whole input (a global pool, and everything computed from it: an SE gate's product);
    (None, None) where it is not defined."""
    if any(p.rf == GLOBAL for p in parents):
        return GLOBAL, None
    if len(shapes[0]) < 2 or any(p.rf is None for p in parents) or \
            not kind.keeps_rf(node.opts, shapes):
        return None, None
    win = kind.window(node.opts, shapes) if kind.spatial else None
    if win == GLOBAL:
        return GLOBAL, None
    if len(node.shape) < 2 or (kind.spatial and win is None):
        return None, None
    rf = tuple(max(p.rf[a] for p in parents) for a in range(len(parents[0].rf)))
    jump = tuple(max(p.jump[a] for p in parents) for a in range(len(parents[0].jump)))
    if win:
        rf = tuple(_whole(r + (k - 1) * j) for r, j, (k, _) in zip(rf, jump, win))
        jump = tuple(_whole(j * s) for j, (_, s) in zip(jump, win))
    if len(rf) != len(node.shape) - 1:
        return None, None
    return rf, jump


def _whole(v):
    """A Fraction that is a whole number as an int (upsampling after striding)."""
    return int(v) if getattr(v, "denominator", 1) == 1 else v
