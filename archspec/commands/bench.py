"""`archspec bench`: compile and time the train step of a spec on a random batch."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from archspec import jsonout
from archspec.commands import BadParameter
from archspec.commands.options import at_least, choose, parse_shape
from archspec.errors import ArchspecError


def bench(*, spec: Path, batch: int, steps: int, precision: str, warmup: int, matmul_size: int,
          input_shape: Optional[str], scan_blocks: bool, as_json: bool) -> None:
    choose(precision, ("float32", "bf16"), "--precision")
    for flag, value, low in (("--batch", batch, 1), ("--steps", steps, 1),
                             ("--warmup", warmup, 0), ("--matmul-size", matmul_size, 1)):
        at_least(value, low, flag)
    shape = parse_shape(input_shape)
    from archspec.experiment.load import graph_of

    graph = graph_of(spec, input_shape=shape)
    from archspec.use.bench import bench as run_bench, size_problem

    problem = size_problem(graph, batch, matmul_size)
    if problem:
        raise BadParameter(problem[1], param_hint=problem[0])
    from archspec.ui.bench_table import bench_table
    from archspec.ui.render import console

    try:
        result = run_bench(spec, batch, steps, precision, warmup, matmul_size, graph=graph,
                           scan_blocks=scan_blocks)
    except ValueError as exc:
        raise ArchspecError(str(exc)) from None
    from archspec.layers import onednn

    from archspec import hugepages

    backend = onednn.describe()  # which convolution backend the step was traced with
    pages = hugepages.describe()  # whether the step's big buffers fault in 2 MiB pages
    if as_json:
        print(jsonout.dumps({**result.to_dict(), "conv_backend": backend, "memory_pages": pages},
                            indent=2))
        return
    console.print(bench_table(result))
    console.print(f"convolutions: {backend}")
    if result.conv_choice:
        from archspec.ui.progress import conv_choice_line

        console.print(conv_choice_line(result.conv_choice))
        for backend_name, key in (("oneDNN", "onednn"), ("XLA", "xla")):
            names = result.conv_choice.get("layers", {}).get(key)
            if names:
                console.print(f"  {backend_name}: {', '.join(names)}", highlight=False)
    console.print(f"memory pages: {pages}")
