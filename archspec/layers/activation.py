"""Activations, each with the lecture's β scale f(x) = g(βx) where it has one.

An activation is usable three ways: as the `activation:` option of dense/conv, as an
`activation` layer, or as a layer named after the function (`- relu`, `- elu: {beta: 2}`).
ACTIVATIONS is the one table of them: the builder, the validator, the linter and the diagram
all read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Literal, Union

from pydantic import Field, create_model, model_validator

from archspec.layers.base import Example, Layer, Options, ShapeError


@dataclass(frozen=True)
class Function:
    """One activation. `apply(bx, x, p, nn, jnp)`: bx is βx, p the parameters, nn jax.nn."""

    params: dict[str, float | str]  # defaults; a text parameter's default is its first choice
    apply: Callable
    formula: str               # f(x), for docs/spec.md
    zeroing: bool = False      # exactly 0 below 0: units can die, logits can't be negative
    head_output: str | None = None  # the head `output:` that applies this function again
    choices: dict[str, tuple[str, ...]] | None = None  # the values of each text parameter


ACTIVATIONS: dict[str, Function] = {
    "relu": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: nn.relu(bx), "max(0, βx)",
                     zeroing=True),
    "sigmoid": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: nn.sigmoid(bx),
                        "1 / (1 + e^(−βx))", head_output="sigmoid"),
    "logistic": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: nn.sigmoid(bx),
                         "1 / (1 + e^(−βx))", head_output="sigmoid"),
    "tanh": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: jnp.tanh(bx), "tanh(βx)"),
    "softmax": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: nn.softmax(bx, axis=-1),
                        "softmax(βx) over the last axis", head_output="softmax"),
    "softplus": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: nn.softplus(bx),
                         "log(1 + e^(βx))"),
    "elu": Function({"beta": 1.0, "a": 1.0}, lambda bx, x, p, nn, jnp: jnp.where(
        bx >= 0, bx, p["a"] * jnp.expm1(jnp.minimum(bx, 0))),
        "βx if βx ≥ 0 else a(e^(βx) − 1)"),
    "linear": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: bx, "βx"),
    "leaky_relu": Function({"slope": 0.01}, lambda bx, x, p, nn, jnp: nn.leaky_relu(
        x, p["slope"]), "x if x ≥ 0 else slope·x"),
    "relu6": Function({}, lambda bx, x, p, nn, jnp: nn.relu6(x), "min(max(0, x), 6)",
                      zeroing=True),
    "gelu": Function({"approximate": "none"}, lambda bx, x, p, nn, jnp: nn.gelu(
        x, approximate=p["approximate"] == "tanh"),
        "x·Φ(x); `approximate: tanh`: x·(1 + tanh(√(2/π)(x + 0.044715x³)))/2 (PyTorch's "
        "GELU(approximate='tanh'), timm's gelu_tanh)", choices={"approximate": ("none", "tanh")}),
    "swish": Function({"beta": 1.0}, lambda bx, x, p, nn, jnp: x * nn.sigmoid(bx),
                      "x·sigmoid(βx)"),
    "hard_sigmoid": Function({}, lambda bx, x, p, nn, jnp: nn.relu6(x + 3.0) / 6.0,
                             "min(max(0, x + 3), 6) / 6 (MobileNetV3; PyTorch's Hardsigmoid)"),
    "hard_swish": Function({}, lambda bx, x, p, nn, jnp: x * nn.relu6(x + 3.0) / 6.0,
                           "x·min(max(0, x + 3), 6) / 6 (MobileNetV3)"),
    "mish": Function({}, lambda bx, x, p, nn, jnp: x * jnp.tanh(nn.softplus(x)),
                     "x·tanh(log(1 + e^x))"),
}
ACTIVATIONS["silu"] = ACTIVATIONS["swish"]  # PyTorch's and Flax's name for the same function


def alias_of(name: str) -> str | None:
    """The first name of the same function (`silu` is `swish`), or None."""
    first = next(k for k, f in ACTIVATIONS.items() if f is ACTIVATIONS[name])
    return None if first == name else first


PARAMS: dict[str, dict[str, float | str]] = {k: f.params for k, f in ACTIVATIONS.items()}

ActivationName = Literal[tuple(ACTIVATIONS)]
ActivationSpec = Union[ActivationName, dict[str, dict[str, float | str] | None]]


def parse(spec: ActivationSpec) -> tuple[str, dict[str, float]]:
    """`relu` or `{elu: {beta: 2, a: 1}}` -> ("elu", {"beta": 2.0, "a": 1.0}); a parsed
    (name, parameters) pair is returned as it is."""
    if isinstance(spec, tuple):
        return spec
    if isinstance(spec, str):
        name, given = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, given = next(iter(spec.items()))
        given = dict(given or {})
    else:
        raise ShapeError("an activation is a name or a one-key mapping",
                         expected="e.g. relu or {elu: {beta: 2.0, a: 1.0}}", found=str(spec))
    if name not in ACTIVATIONS:
        from archspec.errors import did_you_mean
        raise ShapeError(f"unknown activation '{name}'", expected=", ".join(ACTIVATIONS),
                         found=repr(name), hint="prelu learns its slope, so it is a layer: "
                         "add `- prelu` after this one" if name == "prelu"
                         else did_you_mean(name, ACTIVATIONS))
    params = dict(PARAMS[name])
    for key, value in given.items():
        if key not in params:
            raise ShapeError(f"activation '{name}' has no parameter '{key}'",
                             expected=", ".join(params) or "no parameters", found=repr(key))
        choices = (ACTIVATIONS[name].choices or {}).get(key)
        if choices is not None:
            if value not in choices:
                raise ShapeError(f"activation parameter '{key}' of {name} is one of a few "
                                 "names", expected=" or ".join(choices), found=repr(value))
            params[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ShapeError(f"activation parameter '{key}' must be a number", found=repr(value))
        params[key] = float(value)
    return name, params


def name_of(spec) -> str | None:
    """The function's name without parsing its parameters (for labels)."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, tuple):
        return spec[0]
    return next(iter(spec)) if isinstance(spec, dict) and len(spec) == 1 else str(spec)


def apply(spec, x):
    import jax
    import jax.numpy as jnp

    name, p = parse(spec)
    b = p.get("beta", 1.0)
    return ACTIVATIONS[name].apply(x if b == 1.0 else b * x, x, p, jax.nn, jnp)


def head_output(name: str, x):
    """A head's `output:` function (softmax, sigmoid, linear, softplus) on its raw values:
    probabilities, positive values or the values themselves; float32 but for linear. The
    one place it is applied: predictions, regression losses and reports."""
    if name == "linear":
        return x
    return apply(name, x.astype("float32"))


class Activation(Layer):
    kind = "activation"
    doc = "An activation function as its own layer: `- activation: relu`."
    shorthand = "function"
    category = "activation"
    example = Example({"function": {"elu": {"beta": 2.0}}}, [(5, 3)])

    class Options(Options):
        function: ActivationSpec = Field(description="a name, or {name: {parameters}}")

        @model_validator(mode="before")
        @classmethod
        def _inline_function(cls, data):
            """`- activation: {elu: {beta: 2}}` means `function: {elu: {beta: 2}}`."""
            if isinstance(data, dict) and "function" not in data:
                named = [k for k in data if k in ACTIVATIONS]
                if len(named) == 1:
                    fn = named[0]
                    data = {k: v for k, v in data.items() if k != fn} | {
                        "function": {fn: data[fn]}}
            return data

    def out_shape(self, o, shapes, dtypes):
        parse(o.function)
        return shapes[0]

    def output_activation(self, o, default):
        return o.function

    def label(self, o, rank, default_activation=None):
        return name_of(o.function) or "activation"

    def build(self, o, xs, *, train, name, defaults):
        return apply(o.function, xs[0])


def _named(fn: str) -> type[Layer]:
    fields = PARAMS[fn]

    choices = ACTIVATIONS[fn].choices or {}
    Opts = create_model(f"{fn.title().replace('_', '')}Options", __base__=Options,
                        **{k: (Literal[choices[k]] if k in choices else float, v)
                           for k, v in fields.items()})

    class Named(Layer):
        kind: ClassVar[str] = fn
        doc: ClassVar[str] = f"The {fn} activation as a layer" + (
            f" (parameters: {', '.join(fields)})." if fields else ".")
        category: ClassVar[str] = "activation"
        example: ClassVar[Example] = Example({}, [(4, 3)])
        Options = Opts

        def output_activation(self, o, default):
            return (fn, {k: getattr(o, k) for k in fields})

        def label(self, o, rank, default_activation=None):
            return fn

        def build(self, o, xs, *, train, name, defaults):
            return apply(self.output_activation(o, None), xs[0])

    Named.__name__ = fn.title().replace("_", "")
    return Named


for _fn in ACTIVATIONS:
    _named(_fn)


class PReLU(Layer):
    kind = "prelu"
    doc = ("Leaky ReLU with a learned slope, x if x ≥ 0 else a·x (He et al. 2015): one `a` "
           "per channel (the last axis), or one for the whole layer with `shared: true` "
           "(PyTorch's default `num_parameters=1`).")
    category = "activation"
    example = Example({"slope": 0.1}, [(3, 3, 4)])

    class Options(Options):
        slope: float = Field(0.25, description="the slopes' initial value")
        shared: bool = Field(False, description="one slope for every channel")

    def params(self, o, shapes, out, defaults):
        return (1 if o.shared else shapes[0][-1]), 0

    def label(self, o, rank, default_activation=None):
        return "prelu"

    def build(self, o, xs, *, train, name, defaults):
        import jax.nn.initializers as init
        import jax.numpy as jnp

        from archspec.layers.learned import learned

        x = xs[0]
        (a,) = learned(name, ("slope", (1 if o.shared else x.shape[-1],),
                              init.constant(o.slope)))
        return jnp.where(x >= 0, x, a.astype(x.dtype) * x)
