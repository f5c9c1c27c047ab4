"""`archspec graph`: the architecture as a diagram (DOT, Mermaid or a Graphviz picture)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from archspec.commands.options import at_least, parse_shape


def graph(*, spec: Path, output: Optional[Path], collapse: Optional[bool], depth: Optional[int],
          input_shape: Optional[str]) -> None:
    if depth is not None:
        at_least(depth, 0, "--depth", "depth must be >= 0")
    from archspec.ui.render import console
    from archspec.experiment.load import graph_of
    from archspec.viz.graph import build_diagram, output_format, write_diagram

    if output is not None:
        output_format(output)
    shape = parse_shape(input_shape)
    g = graph_of(spec, input_shape=shape)
    diagram = build_diagram(g, collapse, depth)
    text = write_diagram(diagram, output)
    if output is None:
        print(text, end="")
        return
    console.print(f"wrote {output}: {len(diagram.boxes)} boxes, {len(diagram.edges)} edges"
                  + (" (blocks collapsed)" if diagram.collapsed else ""))
