"""`init:` — a new run starts from a tensor file's weights.

The file is read and matched against the model's variable shapes in `prepare`, before a run
folder exists, so a file that does not fit is a located error at the `init:` line (exit 2)
and nothing is written. `Run.start` then puts the matched values into each new attempt's
freshly initialised variables; a resume restores its own checkpoint instead."""
from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import Pos
from archspec.weights.load import Coverage, fit, replace_leaves


@dataclass(frozen=True)
class InitialWeights:
    values: dict          # the file's tensors in the spec's layouts, by variable path
    report: Coverage      # what was filled: the line the run prints and logs

    def apply(self, params, batch_stats):
        """(params, batch_stats) with the loaded variables replaced; the rest unchanged."""
        out = replace_leaves({"params": params, "batch_stats": batch_stats}, self.values)
        return out["params"], out["batch_stats"]


def read_initial_weights(init, graph, variables, pos: Pos | None) -> InitialWeights:
    """The values of `init:` matched to the model's variables (`variables`: their shapes,
    model.build.abstract_variables), or a WeightsError located at `pos`."""
    values, report = fit(graph, variables, init.from_, init.format, init.map, init.skip,
                         init.strict, pos)
    return InitialWeights(values, report)
