"""How big an architecture may be, and the check of a resolved graph against it: refused
with the layer to blame before anything is allocated."""
from __future__ import annotations

from archspec.errors import ErrorCollector
from archspec.fmt import BYTES_PER_VALUE, fmt_bytes, fmt_count, fmt_shape
from archspec.spec.graph import Graph

MAX_REPEAT = 10_000
MAX_LAYERS = 100_000           # nodes of the graph after expansion
MAX_EXPANSIONS = 2 * MAX_LAYERS  # layer and block instances visited while expanding
MAX_DEPTH = 64                 # nested block calls
MAX_PARAMS = 4_000_000_000     # 16 GB of float32 parameters
MAX_ACTIVATIONS = 4_000_000_000  # values of all layer outputs for one example: 16 GB
MAX_NAME = 128                 # characters of one `name:` (checkpoint keys join the names
                               # of a node's path; orbax refuses a key of 64 KiB)


def elements(shape) -> int:
    n = 1
    for s in shape or (0,):
        n *= s
    return n


def check_size(graph: Graph, errors: ErrorCollector) -> None:
    total = graph.total("params") + graph.total("state")
    if total > MAX_PARAMS:
        biggest = max(graph.layers, key=lambda n: n.params)
        errors.add(f"the model has {fmt_count(total)} parameters "
                   f"(~{fmt_bytes(total * BYTES_PER_VALUE)} in float32); refusing to build it",
                   biggest.pos, biggest.id,
                   expected=f"at most {MAX_PARAMS:,} parameters",
                   found=f"{fmt_count(biggest.params)} in this layer alone",
                   hint="check units/maps; nothing has been allocated")
        return
    sizes = {n.id: elements(n.shape) for n in graph.nodes.values()}
    values = sum(sizes.values())
    if values > MAX_ACTIVATIONS:
        biggest = max(graph.nodes.values(), key=lambda n: sizes[n.id])
        errors.add(f"one example's layer outputs hold {fmt_count(values)} values "
                   f"(~{fmt_bytes(values * BYTES_PER_VALUE)} in float32); refusing to build it",
                   biggest.pos, biggest.id,
                   expected=f"at most {MAX_ACTIVATIONS:,} values per example",
                   found=f"{fmt_count(sizes[biggest.id])} in this layer's output "
                         f"{fmt_shape(biggest.shape)} alone",
                   hint="check maps, units and the input shape, or downsample "
                        "earlier; nothing has been allocated")
