"""What every layer kind is: options, output shape, counts, receptive field, Flax build.

A kind is one small class registered under its YAML name. Adding a kind means adding one
class (and its tests); the loader, validator, summary, schema and builder pick it up.
"""
from __future__ import annotations

import math
from typing import ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

REGISTRY: dict[str, "Layer"] = {}

Shape = tuple  # without the batch axis

# --- option building blocks shared by several kinds -----------------------------------

ActivationName = Literal["relu", "sigmoid", "logistic", "tanh", "softmax", "softplus", "elu",
                         "linear", "leaky_relu", "relu6", "gelu", "swish"]
ActivationSpec = Union[ActivationName, dict[str, dict[str, float] | None]]
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


class Layer:
    """Base of all kinds. `kind` is the YAML name; `Options` the pydantic options model."""

    kind: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    n_inputs: ClassVar[int | None] = 1     # None: any number >= 2 (merges)
    shorthand: ClassVar[str | None] = None  # `- dropout: 0.5` fills this option
    spatial: ClassVar[bool] = False         # contributes to receptive field
    doc: ClassVar[str] = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            REGISTRY[cls.kind] = cls()

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
        """(kernel_extent, stride) per spatial axis for receptive-field arithmetic."""
        return None

    def build(self, o, xs: list, *, train: bool, name: str, defaults):
        raise NotImplementedError


def spatial_rank(shape: Shape) -> int:
    return len(shape) - 1


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


def fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def prod(xs) -> int:
    return math.prod(int(x) for x in xs)


def resolve_opt(value, default):
    return default if value is None else value


def kinds() -> dict[str, "Layer"]:
    from archspec import layers  # noqa: F401  (registers every kind)
    return REGISTRY

