"""`archspec weights`: look into a tensor file, and convert one into a spec's own names."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from archspec import jsonout
from archspec.commands.options import parse_shape


def inspect(*, file: Path, fmt: Optional[str], as_json: bool) -> None:
    from archspec.ui.render import console
    from archspec.ui.weights import tensors_table, totals_line
    from archspec.weights.read import read_tensors, sniff

    tensors = read_tensors(file, fmt)
    if as_json:
        print(jsonout.dumps({"file": str(file), "format": sniff(file), "tensors": [
            {"name": k, "shape": list(v.shape), "dtype": str(v.dtype)}
            for k, v in tensors.items()]}, indent=2))
        return
    console.print(tensors_table(tensors, f"{Path(file).name} ({sniff(file)})"))
    console.print(totals_line(tensors))


def convert(*, file: Path, spec: Path, namemap: str, output: Path, fmt: Optional[str],
            skip: list[str], input_shape: Optional[str], as_json: bool) -> None:
    """Load FILE into SPEC through the map (every gap an error unless skipped) and write
    the variables it filled in archspec's names and layouts (params/<layer>/<name>)."""
    from archspec.experiment.load import graph_of
    from archspec.ui.render import console

    graph = graph_of(spec, input_shape=parse_shape(input_shape))
    from archspec.model.build import abstract_variables, build_model
    from archspec.weights.load import load_into
    from archspec.weights.plan import own_key, spec_variables
    from archspec.weights.read import write_tensors

    shapes = abstract_variables(build_model(graph), graph)
    shapes = {c: shapes[c] for c in ("params", "batch_stats") if c in shapes}
    loaded, report = load_into(graph, shapes, file, fmt, namemap, skip)
    import jax
    import numpy as np

    out = {own_key(t): _get(loaded, t) for t in spec_variables(shapes)}
    out = {k: v for k, v in out.items()  # a skipped layer is still only a shape
           if not isinstance(v, jax.ShapeDtypeStruct)}

    write_tensors({k: np.asarray(v) for k, v in out.items()}, output,
                  metadata={"archspec_spec": graph.name, "source": str(file),
                            "map": report.map})
    if as_json:
        print(jsonout.dumps({**report.to_dict(), "output": str(output)}, indent=2))
        return
    console.print(report.line())
    console.print(f"wrote {output}: {len(out)} tensors in archspec's names")


def _get(tree, target):
    for k in target:
        tree = tree[k]
    return tree
