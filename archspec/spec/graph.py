"""The resolved graph: every block, repeat and sugar expanded into a flat DAG of nodes
whose shapes, parameter counts, MACs and receptive fields are known before any compilation."""
from __future__ import annotations

import fnmatch

from dataclasses import dataclass, field

from archspec.errors import Pos


@dataclass
class Node:
    id: str                      # unique dotted path: "stage2.bottleneck1.conv3"
    kind: str                    # registry key, or "input"
    opts: object                 # the kind's validated Options (None for inputs)
    inputs: list[str]
    pos: Pos | None
    shape: tuple | None = None   # without batch
    dtype: str = "float32"
    params: int = 0              # trainable, from the resolver (Flax variables are the truth)
    state: int = 0
    macs: int = 0
    rf: tuple | None = None      # receptive field per spatial axis, in input pixels
    jump: tuple | None = None    # effective stride per spatial axis


@dataclass
class Head:
    name: str
    node: str
    output: str
    loss_weight: float
    shape: tuple | None = None
    pos: Pos | None = None       # where the head is written (its `output:`, or the last layer)
    train_only: bool = False     # an auxiliary output: trained, not used at inference


@dataclass(eq=False)  # hashable by identity: the Flax module holds it as a field
class Graph:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    inputs: dict[str, Node] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)
    defaults: object = None
    source: str = ""
    variables: dict = field(default_factory=dict)  # the architecture's variables, resolved

    @property
    def layers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind != "input"]

    def total(self, attr: str) -> int:
        return sum(getattr(n, attr) for n in self.nodes.values())


def matches(node_id: str, globs) -> bool:
    """Whether a layer glob names this layer: a layer (`fc`, `stage4.*`, fnmatch), or every
    layer inside a block (`stage4`). `init: {skip:}` and `freeze:` read globs this way."""
    return any(fnmatch.fnmatchcase(node_id, g) or node_id.startswith(g + ".") for g in globs)
