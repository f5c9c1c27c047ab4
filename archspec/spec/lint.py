"""Warnings about architectures that are valid but almost certainly not what was meant:
mistakes at a head that train without an error and quietly cost accuracy."""
from __future__ import annotations

from archspec.errors import SpecError
from archspec.layers.activation import ACTIVATIONS
from archspec.spec.graph import Graph


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
        fn = ACTIVATIONS[act]
        if fn.head_output == head.output:  # the head's output function applies it again
            out.append(SpecError(
                f"{act} applied twice: the last layer '{node.id}' ends in {act} and the head's "
                f"`output: {head.output}` applies it again", node.pos, where,
                hint=f"set `activation: linear` on '{node.id}'; the head's output function "
                     "works on raw scores (logits)"))
        elif fn.zeroing and head.output in ("softmax", "sigmoid"):
            source = "from `defaults.activation`" if inherited else "set on the layer"
            out.append(SpecError(
                f"the logits of head '{name}' pass through {act} ({source}): they can never "
                "be negative, and dead units give constant predictions", node.pos, where,
                hint=f"set `activation: linear` on '{node.id}'"))
    return out


def _last_activation(node, defaults) -> tuple[str | None, bool]:
    """(activation name at the node's output, whether it came from the defaults)."""
    from archspec.layers import REGISTRY
    from archspec.layers.activation import parse

    kind = REGISTRY[node.kind]
    own = kind.output_activation(node.opts, None)
    if own is not None:
        return parse(own)[0], False
    inherited = kind.output_activation(node.opts, getattr(defaults, "activation", None))
    return (parse(inherited)[0], True) if inherited is not None else (None, False)
