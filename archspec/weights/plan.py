"""Which file tensor fills which spec variable: the slots of a spec under a name map.

A slot is one tensor of the file (its key and its shape in the file's layout) and the
variables of one node it becomes. The spec's side comes from the model's own variables
(`variables[collection][node][...]`, as SpecModel names them), never from a second guess
at what a layer holds."""
from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.weights import layout
from archspec.weights.errors import WeightsError
from archspec.weights.maps import OWN, NameMap

COLLECTIONS = ("params", "batch_stats")


@dataclass
class Slot:
    node: str
    kind: str
    key: str                 # the tensor's name in the file
    piece: layout.Piece | None
    targets: list            # [(collection, node, path tuple)]
    shapes: list             # the spec's shape of each target
    file_shape: tuple | None  # the shape the file should have (None: kept by PyTorch only)

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)


def leaves(tree, prefix=()) -> dict[tuple, tuple]:
    """{path: shape} of a nested mapping of arrays (or ShapeDtypeStructs)."""
    out = {}
    for k, v in tree.items():
        if hasattr(v, "items"):
            out.update(leaves(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = tuple(v.shape)
    return out


def spec_variables(variables) -> dict[tuple, tuple]:
    """{(collection, node, *path): shape} of the weights a file can fill."""
    out = {}
    for c in COLLECTIONS:
        out.update({(c, *p): s for p, s in leaves(variables.get(c, {})).items()})
    return out


def own_key(target: tuple) -> str:
    """archspec's own name of a variable: params/stage1.basic1.residual1.conv1/kernel."""
    return "/".join(target)


def own_slots(graph, specvars: dict) -> list[Slot]:
    return [Slot(t[1], graph.nodes[t[1]].kind, own_key(t), None, [t], [s], s)
            for t, s in specvars.items()]


def slots(graph, specvars: dict, namemap: NameMap) -> list[Slot]:
    """The slots of every node with variables; a node the map does not name, or of a kind
    no converter knows, raises one error naming them all."""
    if namemap.name == OWN:
        return own_slots(graph, specvars)
    stacked = sorted({t[1] for t in specvars if t[1] not in graph.nodes})
    if stacked:  # a BlockRun's stacked parameters ("stage3.bottleneck2..bottleneck36")
        raise WeightsError("loading into a model built with scan_blocks is not supported yet: "
                           + ", ".join(stacked), hint="load the weights without scan_blocks")
    by_node: dict[str, dict] = {}
    for t, s in specvars.items():
        by_node.setdefault(t[1], {})[(t[0], *t[2:])] = s
    out, unknown = [], []
    for node_id, held in by_node.items():
        node = graph.nodes[node_id]
        pieces = layout.pieces(node, graph, namemap.source)
        if pieces is None:
            unknown.append(f"{node_id} ({node.kind})")
            continue
        module = namemap.module(node_id)
        for piece in pieces:
            out.extend(_slot(node, module, piece, held))
    if unknown:
        raise WeightsError(f"converting {namemap.source} weights into these layers is not "
                           "supported yet: " + ", ".join(unknown),
                           hint="skip them (skip: [...]) and train them from scratch")
    return out


def _slot(node, module, piece, held) -> list[Slot]:
    wanted = [(c, *path) for c, path in piece.targets]
    if wanted and not all(t in held for t in wanted):
        return []  # a conv without bias, a batchnorm without scale
    if module is None:
        key = None
    else:
        key = module + ("." + piece.suffix if piece.suffix else "")
    targets = [(t[0], node.id, *t[1:]) for t in wanted]
    shapes = [held[t] for t in wanted]
    return [Slot(node.id, node.kind, key, piece, targets, shapes,
                 file_shape(piece, shapes) if piece.targets else None)]


def file_shape(piece, shapes) -> tuple:
    """The shape the tensor has in the file's layout: the reverse conversion, traced."""
    import jax
    import jax.numpy as jnp

    specs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    return tuple(jax.eval_shape(lambda *vs: piece.save(vs, jnp), *specs).shape)


def shape_fits(slot: Slot, found: tuple) -> bool:
    if tuple(found) == slot.file_shape:
        return True
    squeeze = lambda s: tuple(d for d in s if d != 1)  # noqa: E731
    return slot.piece is not None and slot.piece.loose and \
        squeeze(found) == squeeze(slot.file_shape)


def padding_traps(graph) -> list[str]:
    """Layers where PyTorch's symmetric padding and XLA's `same` part: a stride > 1 with
    `padding: same` whose pads come out uneven (XLA puts the odd one at the end)."""
    from archspec.layers import REGISTRY

    out = []
    for node in graph.layers:
        o = node.opts
        if getattr(o, "padding", None) != "same" or not hasattr(REGISTRY[node.kind],
                                                                  "geometry"):
            continue
        geo = REGISTRY[node.kind].geometry(o, graph.nodes[node.inputs[0]].shape)
        strides, pads = geo[1], geo[-1]
        if max(strides) > 1 and any(lo != hi for lo, hi in pads):
            out.append(f"{node.id} (stride {max(strides)}, pads "
                       f"{', '.join(f'{lo}+{hi}' for lo, hi in pads)})")
    return out
