"""Warnings about architectures that are valid but almost certainly not what was meant:
mistakes at a head that train without an error and quietly cost accuracy."""
from __future__ import annotations

from archspec.errors import SpecError
from archspec.spec.graph import Graph

# A head's output function already applies these to the logits.
_OUTPUT_ACTS = {"softmax": {"softmax"}, "sigmoid": {"sigmoid", "logistic"}}
_CLAMPING = {"relu", "relu6"}  # logits that can never be negative (and units that can die)


def head_warnings(graph: Graph) -> list[SpecError]:
    out = []
    for name, head in graph.heads.items():
        node = graph.nodes.get(head.node)
        if node is None or node.kind == "input":
            continue
        act, inherited = _last_activation(node, graph.defaults)
        if act is None:
            continue
        where = f"heads.{name}"
        if act in _OUTPUT_ACTS.get(head.output, ()):
            out.append(SpecError(
                f"{act} applied twice: the last layer '{node.id}' ends in {act} and the head's "
                f"`output: {head.output}` applies it again", node.pos, where,
                hint=f"set `activation: linear` on '{node.id}'; the head's output function "
                     "works on raw scores (logits)"))
        elif act in _CLAMPING and head.output in ("softmax", "sigmoid"):
            source = "from `defaults.activation`" if inherited else "set on the layer"
            out.append(SpecError(
                f"the logits of head '{name}' pass through {act} ({source}): they can never "
                "be negative, and dead units give constant predictions", node.pos, where,
                hint=f"set `activation: linear` on '{node.id}'"))
    return out


def _last_activation(node, defaults) -> tuple[str | None, bool]:
    """(activation name at the node's output, whether it came from the defaults)."""
    from archspec.layers.activation import PARAMS, parse

    if node.kind in PARAMS:
        return node.kind, False
    opts = node.opts
    if node.kind == "activation":
        return parse(opts.function)[0], False
    if not hasattr(opts, "activation"):
        return None, False
    if opts.activation is not None:
        return parse(opts.activation)[0], False
    default = getattr(defaults, "activation", None)
    return (parse(default)[0], True) if default is not None else (None, False)
