"""Activations, each with the lecture's β scale f(x) = g(βx) where it has one.

An activation is usable three ways: as the `activation:` option of dense/conv, as an
`activation` layer, or as a layer named after the function (`- relu`, `- elu: {beta: 2}`).
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import create_model, model_validator

from archspec.layers.base import ActivationSpec, Layer, Options, ShapeError

# name -> (allowed parameters with defaults)
PARAMS: dict[str, dict[str, float]] = {
    "relu": {"beta": 1.0}, "sigmoid": {"beta": 1.0}, "logistic": {"beta": 1.0},
    "tanh": {"beta": 1.0}, "softmax": {"beta": 1.0}, "softplus": {"beta": 1.0},
    "elu": {"beta": 1.0, "a": 1.0}, "linear": {"beta": 1.0}, "leaky_relu": {"slope": 0.01},
    "relu6": {}, "gelu": {}, "swish": {"beta": 1.0},
}
RELU_FAMILY = {"relu", "relu6", "leaky_relu", "elu", "gelu", "swish"}


def parse(spec: ActivationSpec) -> tuple[str, dict[str, float]]:
    """`relu` or `{elu: {beta: 2, a: 1}}` -> ("elu", {"beta": 2.0, "a": 1.0})."""
    if isinstance(spec, str):
        name, given = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, given = next(iter(spec.items()))
        given = dict(given or {})
    else:
        raise ShapeError("an activation is a name or a one-key mapping",
                         expected="e.g. relu or {elu: {beta: 2.0, a: 1.0}}", found=str(spec))
    if name not in PARAMS:
        from archspec.errors import did_you_mean
        raise ShapeError(f"unknown activation '{name}'", expected=", ".join(PARAMS),
                         found=repr(name), hint=did_you_mean(name, PARAMS))
    params = dict(PARAMS[name])
    for key, value in given.items():
        if key not in params:
            raise ShapeError(f"activation '{name}' has no parameter '{key}'",
                             expected=", ".join(params) or "no parameters", found=repr(key))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ShapeError(f"activation parameter '{key}' must be a number", found=repr(value))
        params[key] = float(value)
    return name, params


def apply(spec, x):
    import jax
    import jax.numpy as jnp

    name, p = parse(spec) if not isinstance(spec, tuple) else spec
    b = p.get("beta", 1.0)
    bx = x if b == 1.0 else b * x
    if name == "relu":
        return jax.nn.relu(bx)
    if name in ("sigmoid", "logistic"):
        return jax.nn.sigmoid(bx)
    if name == "tanh":
        return jnp.tanh(bx)
    if name == "softmax":
        return jax.nn.softmax(bx, axis=-1)
    if name == "softplus":
        return jax.nn.softplus(bx)
    if name == "elu":
        return jnp.where(bx >= 0, bx, p["a"] * jnp.expm1(jnp.minimum(bx, 0)))
    if name == "linear":
        return bx
    if name == "leaky_relu":
        return jax.nn.leaky_relu(x, p["slope"])
    if name == "relu6":
        return jax.nn.relu6(x)
    if name == "gelu":
        return jax.nn.gelu(x, approximate=False)
    if name == "swish":
        return x * jax.nn.sigmoid(bx)
    raise AssertionError(name)


class Activation(Layer):
    kind = "activation"
    doc = "An activation function as its own layer: `- activation: relu`."
    shorthand = "function"

    class Options(Options):
        function: ActivationSpec

        @model_validator(mode="before")
        @classmethod
        def _inline_function(cls, data):
            """`- activation: {elu: {beta: 2}}` means `function: {elu: {beta: 2}}`."""
            if isinstance(data, dict) and "function" not in data:
                named = [k for k in data if k in PARAMS]
                if len(named) == 1:
                    fn = named[0]
                    data = {k: v for k, v in data.items() if k != fn} | {
                        "function": {fn: data[fn]}}
            return data

    def out_shape(self, o, shapes, dtypes):
        parse(o.function)
        return shapes[0]

    def build(self, o, xs, *, train, name, defaults):
        return apply(o.function, xs[0])


def _named(fn: str) -> type[Layer]:
    fields = PARAMS[fn]

    Opts = create_model(f"{fn.title().replace('_', '')}Options", __base__=Options,
                        **{k: (float, v) for k, v in fields.items()})

    class Named(Layer):
        kind: ClassVar[str] = fn
        doc: ClassVar[str] = f"The {fn} activation as a layer" + (
            f" (parameters: {', '.join(fields)})." if fields else ".")
        Options = Opts

        def build(self, o, xs, *, train, name, defaults):
            return apply((fn, {k: getattr(o, k) for k in fields}), xs[0])

    Named.__name__ = fn.title().replace("_", "")
    return Named


for _fn in PARAMS:
    _named(_fn)
