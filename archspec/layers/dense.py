"""Fully connected layer (the lecture's hidden and output layers)."""
from __future__ import annotations

from archspec.layers import activation
from archspec.layers.base import (ActivationSpec, InitSpec, Layer, Options, ShapeError, fmt,
                                  prod)
from archspec.layers.init import check_init, initializer


class Dense(Layer):
    kind = "dense"
    doc = "units outputs, each a weighted sum of all inputs plus a bias, then the activation."
    shorthand = "units"

    class Options(Options):
        units: int
        bias: bool | None = None
        activation: ActivationSpec | None = None
        init: InitSpec | None = None
        bias_init: InitSpec | None = None

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        if o.units < 1:
            raise ShapeError("units must be positive", expected=">= 1", found=str(o.units),
                             field="units")
        if len(shape) >= 3:
            raise ShapeError(f"dense needs a flat input but got a {len(shape)}-D feature map",
                             expected="(features,)", found=fmt(shape),
                             hint="add `- flatten` (or a global pool) before this layer")
        if o.activation is not None:
            activation.parse(o.activation)
        check_init(o.init, "init"), check_init(o.bias_init, "bias_init")
        return (*shape[:-1], o.units)

    def params(self, o, shapes, out, defaults):
        bias = defaults.bias if o.bias is None else o.bias
        return shapes[0][-1] * o.units + (o.units if bias else 0), 0

    def macs(self, o, shapes, out):
        return prod(shapes[0]) * o.units

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        y = nn.Dense(o.units, use_bias=defaults.bias if o.bias is None else o.bias,
                     kernel_init=initializer(o.init or defaults.init),
                     bias_init=initializer(o.bias_init or defaults.bias_init),
                     dtype=defaults.compute_dtype, name=name)(xs[0])
        act = o.activation if o.activation is not None else defaults.activation
        return activation.apply(act, y) if act else y
