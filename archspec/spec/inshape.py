"""`in` in expressions: the shape of the node a block instance starts from (in `layers:`, the
architecture's input; in a head's `layers:`, the node the head reads), so that a block reads
its widths and sizes from its input instead of having them passed in: `${in.channels}`,
`${in.h}`, `${in.shape[0]}`. Shapes are known here because every node is inferred as the
expansion adds it (spec/expand.py)."""
from __future__ import annotations

from archspec.errors import did_you_mean
from archspec.fmt import fmt_dims
from archspec.spec.expr import ExprError, Unknown
from archspec.spec.graph import Graph

# The axes of an input by its rank (without the batch axis); the last is always `channels`.
AXES = {1: ("channels",), 2: ("length", "channels"), 3: ("h", "w", "channels"),
        4: ("d", "h", "w", "channels")}
KIND = {1: "a vector", 2: "a sequence", 3: "an image", 4: "a volume"}
ATTRIBUTES = ("d", "h", "w", "length", "channels", "shape")
NEEDS = {"h": "an image (H, W, C) or a volume (D, H, W, C)",
         "w": "an image (H, W, C) or a volume (D, H, W, C)",
         "d": "a volume (D, H, W, C)", "length": "a sequence (length, channels)"}
# Words other frameworks and papers use; "height" is too far from "h" for difflib.
ALIASES = {"height": "h", "width": "w", "depth": "d", "len": "length", "seq_len": "length",
           "sequence": "length", "steps": "length", "time": "length", "tokens": "length",
           "c": "channels", "channel": "channels", "maps": "channels",
           "features": "channels", "filters": "channels", "units": "channels",
           "dim": "channels", "size": "shape", "dims": "shape", "rank": "shape"}


class InShape:
    """The input of one block instance, as expressions read it."""

    def __init__(self, shape: tuple, source: str):
        self.shape, self.source = tuple(shape), source
        self.axes = AXES.get(len(self.shape), ("channels",))  # rank 5+: channels and shape

    def expr_attribute(self, name: str):
        if name == "shape":
            return self.shape
        if name in self.axes:
            return self.shape[-1] if name == "channels" else self.shape[self.axes.index(name)]
        if name in ATTRIBUTES:
            raise ExprError(f"the input has no axis '{name}'",
                            f"this input is {self._kind()}: read "
                            + ", ".join(f"in.{a}" for a in self.axes)
                            + ", or in.shape[k] for any axis",
                            expected=f"`in.{name}` on {NEEDS[name]}", found=self.describe())
        known = [a for a in ATTRIBUTES if a in self.axes or a == "shape"]
        alias = ALIASES.get(name.lower())
        if alias in known:
            hint = f"did you mean '{alias}'?"
        elif alias in ATTRIBUTES:
            hint = f"archspec calls it '{alias}', but this input is {self._kind()}"
        else:
            hint = did_you_mean(name, known) or f"this input is {self._kind()}"
        raise ExprError(f"`in` has no attribute '{name}'", hint,
                        expected="one of: " + ", ".join(f"in.{a}" for a in known),
                        found=f"'{name}' on {self.describe()}")

    def _kind(self) -> str:
        what = KIND.get(len(self.shape), f"a rank-{len(self.shape)} tensor")
        return f"{what} ({', '.join(self.axes) if len(self.axes) > 1 else 'channels'})"

    def describe(self) -> str:
        return f"{fmt_dims(self.shape)} from {self.source}, {self._kind()}"

    def __repr__(self) -> str:
        return f"in ({fmt_dims(self.shape)} from {self.source})"


class NoInput:
    """`in` where the layers start from no single node (several inputs, no `inputs:`)."""

    def __init__(self, found: str, hint: str):
        self.found, self.hint = found, hint

    def expr_attribute(self, name: str):
        raise ExprError("`in` has no single input here", self.hint,
                        expected="one node the layers start from", found=self.found)

    def __repr__(self) -> str:
        return "in (no single input)"


class _UnknownInput:
    """The input's shape is unknown after an earlier error: reading it fails silently."""

    def expr_attribute(self, name: str):
        raise Unknown(name)

    def __repr__(self) -> str:
        return "in (unknown after an error)"


UNKNOWN = _UnknownInput()


def input_of(graph: Graph, node_id: str | None):
    """What `in` is for layers that start from `node_id`."""
    node = graph.nodes.get(node_id) if node_id is not None else None
    if node is None or node.shape is None:
        return UNKNOWN
    return InShape(node.shape, node_id)


def top_input(graph: Graph, prev: str | None):
    """`in` in `layers:`: the architecture's input, when there is one to start from."""
    if prev is None and len(graph.inputs) > 1:
        names = ", ".join(graph.inputs)
        return NoInput(f"several inputs ({names}) and no single one the layers start from",
                       "put the layers that read `in` in a block and call it with "
                       f"`inputs: {next(iter(graph.inputs))}`; inside it `in` is that input")
    return input_of(graph, prev)
