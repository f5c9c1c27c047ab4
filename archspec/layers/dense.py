"""Fully connected layer (the lecture's hidden and output layers)."""
from __future__ import annotations

from pydantic import Field

from archspec.fmt import prod
from archspec.layers import activation
from archspec.layers.activation import ActivationSpec
from archspec.layers.base import Example, InitSpec, Layer, Options, ShapeError, with_activation
from archspec.layers.init import check_init, initializer


class Dense(Layer):
    kind = "dense"
    doc = ("units outputs, each a weighted sum of the inputs plus a bias, then the activation. "
           "It applies to the last axis, as in Keras and Flax: on a (tokens, features) "
           "sequence or an H×W×C map it is a pointwise linear layer; `flatten` first to "
           "connect everything.")
    shorthand = "units"
    category = "dense"
    example = Example({"units": 5, "activation": "relu6"}, [(2, 7)])

    class Options(Options):
        units: int = Field(description="outputs")
        bias: bool | None = Field(None, description="default: `defaults.bias`")
        activation: ActivationSpec | None = Field(None, description="default: "
                                                                     "`defaults.activation`")
        init: InitSpec | None = Field(None, description="default: `defaults.init`")
        bias_init: InitSpec | None = Field(None, description="default: `defaults.bias_init`")

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        if o.units < 1:
            raise ShapeError("units must be positive", expected=">= 1", found=str(o.units),
                             field="units")
        if o.activation is not None:
            activation.parse(o.activation)
        check_init(o.init, "init"), check_init(o.bias_init, "bias_init")
        return (*shape[:-1], o.units)

    def params(self, o, shapes, out, defaults):
        bias = defaults.bias if o.bias is None else o.bias
        return shapes[0][-1] * o.units + (o.units if bias else 0), 0

    def macs(self, o, shapes, out):
        return prod(shapes[0]) * o.units  # per position: last axis × units

    def output_activation(self, o, default):
        return o.activation if o.activation is not None else default

    def label(self, o, rank, default_activation=None):
        return with_activation(f"dense {o.units}", self.output_activation(o, default_activation))

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        y = nn.Dense(o.units, use_bias=defaults.bias if o.bias is None else o.bias,
                     kernel_init=initializer(o.init or defaults.init, defaults.shapes_only),
                     bias_init=initializer(o.bias_init or defaults.bias_init,
                                           defaults.shapes_only),
                     dtype=defaults.compute_dtype, name=name)(xs[0])
        act = self.output_activation(o, defaults.activation)
        return activation.apply(act, y) if act else y
