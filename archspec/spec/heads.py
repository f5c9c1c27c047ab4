"""Heads: the named outputs of the model, each read from a node (by default the last) and
optionally through its own layers."""
from __future__ import annotations

from typing import TYPE_CHECKING

from archspec.errors import did_you_mean
from archspec.spec.expr import IN
from archspec.spec.frame import Frame, Scope
from archspec.spec.graph import Head
from archspec.spec.inshape import input_of
from archspec.spec.limits import MAX_NAME
from archspec.spec.yaml_loader import YList

if TYPE_CHECKING:
    from archspec.spec.expand import Expander


def add_heads(ex: "Expander", scope: Scope, last: str | None) -> None:
    graph, errors, heads = ex.graph, ex.errors, ex.arch.heads
    if heads is None:
        if last is not None:
            node = graph.nodes[last]
            graph.heads["output"] = Head("output", last, "linear", 1.0, node.shape, node.pos)
        return
    hnode = ex.root["heads"]
    for name, head in heads.items():
        ynode = hnode[name]
        if len(name) > MAX_NAME:  # a head's layers live under its name
            errors.add(f"a head name is at most {MAX_NAME} characters",
                       hnode.key_pos[name], "heads", expected=f"at most {MAX_NAME} "
                       "characters", found=f"{name[:20]!r}... ({len(name):,} characters)",
                       hint="a head's name prefixes its layers' paths and checkpoint "
                            "keys: use a short word")
            continue
        src = last
        if head.from_ is not None:
            src = scope.lookup(head.from_) or (head.from_ if head.from_ in graph.nodes
                                               else None)
            if src is None:
                errors.add(f"head '{name}' reads unknown node '{head.from_}'",
                           ynode.val_pos["from"], f"heads.{name}",
                           expected="a named layer", found=repr(head.from_),
                           hint=did_you_mean(head.from_, scope.visible()))
                continue
        out = src
        if head.layers:
            env = {**ex.env, IN: input_of(graph, src)}  # a head's layers start from `from`
            frame = Frame(Scope(f"{name}.", scope), src, env, f"heads.{name}.layers", 1)
            out = ex.sequence(ynode.get("layers", YList()), frame)
        node = graph.nodes.get(out)
        graph.heads[name] = Head(name, out, head.output, head.loss_weight,
                                 node.shape if node else None,
                                 ynode.val_pos.get("output", hnode.key_pos[name]),
                                 head.train_only)
    if heads and all(h.train_only for h in heads.values()):
        name = next(iter(heads))
        errors.add("every head is `train_only`: inference would have no output",
                   hnode[name].val_pos["train_only"], f"heads.{name}.train_only",
                   expected="at least one head without `train_only: true`",
                   found=f"{len(heads)} training-only head{'s' * (len(heads) > 1)}",
                   hint="train_only marks an auxiliary output (GoogLeNet's aux1, aux2); "
                        "remove it from the head predictions come from")
