"""What every layer kind is: options, output shape, counts, receptive field, Flax build,
and how it is drawn, health-checked and documented.

A kind is one small class registered under its YAML name. Adding a kind means adding one
class with an `example` (tests/contract/test_kinds.py checks it against the real Flax build); the
loader, validator, summary, schema, builder, diagrams and docs/spec.md pick it up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

REGISTRY: dict[str, "Layer"] = {}

Shape = tuple  # without the batch axis
GLOBAL = "global"  # a receptive field that covers the whole input (after a global pool)

# --- option building blocks shared by several kinds -----------------------------------

InitName = Literal["he_normal", "he_uniform", "glorot_normal", "glorot_uniform",
                   "lecun_normal", "lecun_uniform", "zeros", "ones"]
InitSpec = Union[InitName, dict[str, float]]
IntOrList = Union[int, list[int]]
Padding = Union[Literal["valid", "same"], int, list[int], list[list[int]]]


class Options(BaseModel):
    """Options every layer accepts. Kinds subclass this; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(None, description="node name other layers can refer to")
    inputs: str | list[str] | None = Field(
        None, description="node(s) this layer reads; default: the previous layer")


class ShapeError(Exception):
    """A shape problem found before anything is compiled."""

    def __init__(self, message: str, expected=None, found=None, hint=None, field=None):
        super().__init__(message)
        self.message, self.expected, self.found, self.hint = message, expected, found, hint
        self.field = field  # option key to point at, when one is to blame


@dataclass(frozen=True)
class Example:
    """A small valid use of a kind: its options and input shapes (without the batch axis)."""

    options: dict
    shapes: list
    dtype: str = "float32"
    defaults: dict = field(default_factory=dict)  # the spec's `defaults:` it is built under


class Layer:
    """Base of all kinds. `kind` is the YAML name; `Options` the pydantic options model."""

    kind: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    n_inputs: ClassVar[int | None] = 1     # None: any number >= 2 (merges)
    shorthand: ClassVar[str | None] = None  # `- dropout: 0.5` fills this option
    spatial: ClassVar[bool] = False         # contributes to receptive field
    doc: ClassVar[str] = ""
    category: ClassVar[str] = "other"       # diagram colour group (viz.graph.STYLE)
    feature_maps: ClassVar[bool] = False    # `archspec maps` shows its output by default
    takes_tokens: ClassVar[bool] = False    # may read int32 token ids (the rest read floats)
    token_table: ClassVar[str | None] = None  # the option sizing its table of token ids
    example: ClassVar[Example]              # checked by tests/contract/test_kinds.py

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            REGISTRY[cls.kind] = cls()

    def output_activation(self, o, default):
        """The activation at the node's output (a spec as `activation.parse` reads it), or
        None; `default` is the spec's `defaults.activation` for kinds that inherit it."""
        return None

    def label(self, o, rank: int, default_activation=None) -> str:
        """Kind and key options for diagrams and plots: `conv 3×3/2, 64, relu`. `rank`: the
        input's spatial axes."""
        extras = []
        for f in ("units", "maps", "heads", "dim", "size"):
            v = getattr(o, f, None)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                extras.append(f"{f} {v}" if f in ("heads", "dim") else str(v))
        return " ".join([self.kind, ", ".join(extras)]).strip()

    # Shape inference and analytics work on shapes without the batch axis.
    def out_shape(self, o, shapes: list[Shape], dtypes: list[str]) -> Shape:
        return shapes[0]

    def out_dtype(self, o, dtypes: list[str]) -> str:
        return dtypes[0]

    def params(self, o, shapes: list[Shape], out: Shape, defaults) -> tuple[int, int]:
        """(trainable, state) counts, used to refuse absurd sizes before allocating and
        to cross-check the Flax variables in tests."""
        return 0, 0

    def macs(self, o, shapes: list[Shape], out: Shape) -> int:
        return 0

    def window(self, o, shapes: list[Shape]):
        """(kernel_extent, stride) per spatial axis for receptive-field arithmetic. The stride
        is a Fraction below 1 where the output is finer than the input (upsampling). GLOBAL:
        every output value reads the whole input; None: no receptive field is defined."""
        return None

    def keeps_rf(self, o, shapes: list[Shape]) -> bool:
        """Whether the output's positions are the input's (so the receptive field carries
        over); False where axes are reordered or one is taken away."""
        return True

    def build(self, o, xs: list, *, train: bool, name: str, defaults):
        raise NotImplementedError


def as_tuple(v, n: int, what: str) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    if len(v) != n:
        raise ShapeError(f"{what} has {len(v)} values but the input has {n} spatial axes",
                         expected=f"one int or {n} ints", found=str(list(v)), field=what)
    return tuple(v)


def pad_pairs(padding, kernel: tuple, stride: tuple, dilation: tuple, spatial: tuple):
    """Padding as (low, high) pairs per axis. 'same' follows XLA/Flax: output = ceil(in/stride)."""
    n = len(kernel)
    if padding == "valid":
        return [(0, 0)] * n
    if padding == "same":
        pairs = []
        for k, s, d, size in zip(kernel, stride, dilation, spatial):
            eff = (k - 1) * d + 1
            out = -(-size // s)
            total = max((out - 1) * s + eff - size, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    if isinstance(padding, int):
        return [(padding, padding)] * n
    if all(isinstance(p, int) for p in padding):
        return [(p, p) for p in as_tuple(list(padding), n, "padding")]
    if len(padding) != n or any(len(p) != 2 for p in padding):
        raise ShapeError("padding pairs do not match the input", expected=f"{n} [low, high] pairs",
                         found=str(padding), field="padding",
                         hint=f"one [low, high] pair per spatial axis: the input has {n}")
    return [tuple(p) for p in padding]


def window_out(size: int, k: int, s: int, d: int, lo: int, hi: int, ceil: bool = False) -> int:
    eff = (k - 1) * d + 1
    span = size + lo + hi - eff
    if span < 0:
        return 0
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + lo:  # PyTorch: last window must start inside input
        out -= 1
    return out


def with_activation(text: str, spec) -> str:
    """A label followed by its activation, unless that is linear (or none)."""
    from archspec.layers.activation import name_of

    act = name_of(spec)
    return f"{text}, {act}" if act and act != "linear" else text


def window_text(value, n: int) -> str:
    """A kernel or window per axis for labels: `3×3`, or `5` on one axis."""
    if value is None:
        return ""
    vals = [value] * n if isinstance(value, int) else list(value)
    return "×".join(str(v) for v in vals) if len(set(vals)) > 1 or n > 1 else str(vals[0])


def uniform_text(value) -> str:
    """A stride or dilation for labels: one number when it is the same on every axis."""
    vals = [value] if isinstance(value, int) else list(value)
    return str(vals[0]) if len(set(vals)) == 1 else "×".join(map(str, vals))


def unregister(kind: str) -> None:
    """Remove a kind (one registered by a test)."""
    REGISTRY.pop(kind, None)


def kinds() -> dict[str, "Layer"]:
    from archspec import layers  # noqa: F401  (registers every kind)
    return REGISTRY
