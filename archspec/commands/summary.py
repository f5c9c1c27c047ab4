"""`archspec summary`: shapes, parameters, MACs and receptive field of every layer."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from archspec import jsonout
from archspec.commands.options import at_least, parse_shape


def summary(*, spec: Path, depth: Optional[int], as_json: bool, input_shape: Optional[str]) -> None:
    if depth is not None:
        at_least(depth, 0, "--depth", "depth must be >= 0")
    shape = parse_shape(input_shape)
    from archspec.spec.lint import head_warnings
    from archspec.ui.render import console, print_warnings
    from archspec.ui.summary import summary_table, summary_totals

    graph, frozen = _network(spec, shape)
    print_warnings(head_warnings(graph))
    from archspec.model.summary import summarize  # JAX: only once the spec is known to be good

    s = summarize(graph, depth, frozen)
    if as_json:
        print(jsonout.dumps(s.to_dict(), indent=2))
        return
    console.print(summary_table(s))
    console.print(summary_totals(s))


def _network(spec: Path, shape):
    """(graph, frozen layer ids): an experiment's `freeze:` marks its layers."""
    from archspec.experiment import documents
    from archspec.experiment.load import from_document, graph_of

    doc = documents.load(spec)
    if doc.kind != "experiment":
        return graph_of(doc, input_shape=shape), frozenset()
    from archspec.train.setup import frozen_layers

    loaded = from_document(doc, [], input_shape=shape)
    return loaded.graph, frozen_layers(loaded.exp.freeze, loaded.graph, loaded.root)
