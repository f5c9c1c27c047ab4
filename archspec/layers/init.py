"""Initialisers by name: he / glorot / lecun (normal, uniform), zeros, ones, constant, normal."""
from __future__ import annotations

from archspec.layers.base import ShapeError

_SCALED = {"he": ("fan_in", 2.0), "glorot": ("fan_avg", 1.0), "lecun": ("fan_in", 1.0)}
PARAMETERISED = {"constant": "value", "normal": "stddev", "uniform": "scale",
                 "truncated_normal": "stddev"}


def check(spec) -> None:
    if isinstance(spec, str):
        family, _, dist = spec.partition("_")
        if spec in ("zeros", "ones") or (family in _SCALED and dist in ("normal", "uniform")):
            return
    elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in PARAMETERISED:
        return
    raise ShapeError("unknown initialiser", found=repr(spec),
                     expected="he_normal, he_uniform, glorot_normal, glorot_uniform, lecun_normal,"
                              " lecun_uniform, zeros, ones, {constant: v}, {normal: stddev},"
                              " {uniform: scale}, {truncated_normal: stddev}")


def check_init(spec, field: str) -> None:
    """`check` for a layer option that may be unset; errors point at the option."""
    if spec is None:
        return
    if field == "bias_init" and isinstance(spec, str) and spec.partition("_")[0] in _SCALED:
        raise ShapeError(f"{spec} cannot initialise a bias", found=repr(spec), field=field,
                         expected="zeros, ones, {constant: v}, {normal: stddev}, "
                                  "{uniform: scale} or {truncated_normal: stddev}",
                         hint="he, glorot and lecun scale by a weight matrix's fan-in and "
                              "fan-out; a bias is a vector and has neither")
    try:
        check(spec)
    except ShapeError as exc:
        exc.field = field
        if isinstance(spec, dict) and len(spec) == 1:
            from archspec.errors import did_you_mean
            exc.hint = did_you_mean(next(iter(spec)), PARAMETERISED)
        raise


def _zeros(key, shape, dtype=None):
    import jax.numpy as jnp

    return jnp.zeros(shape, dtype or jnp.float32)


def initializer(spec, shapes_only: bool = False):
    """`shapes_only`: only shapes are wanted (build.abstract_variables, under eval_shape),
    where a zeros init traces ~10x faster than a random one."""
    import jax.nn.initializers as init

    check(spec)
    if shapes_only:
        return _zeros
    if isinstance(spec, dict):
        (name, value), = spec.items()
        if name == "constant":
            return init.constant(value)
        if name == "uniform":
            return init.uniform(value)
        if name == "truncated_normal":
            return init.truncated_normal(value)
        return init.normal(value)
    if spec == "zeros":
        return init.zeros
    if spec == "ones":
        return init.ones
    family, _, dist = spec.partition("_")
    mode, scale = _SCALED[family]
    return init.variance_scaling(scale, mode, "truncated_normal" if dist == "normal" else dist)
