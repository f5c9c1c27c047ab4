"""Layers that only move numbers around: flatten, reshape, dropout, drop_path."""
from __future__ import annotations

from pydantic import Field

from archspec.fmt import fmt_dims, fmt_shape, prod
from archspec.layers.base import Example, Layer, Options, ShapeError


class Flatten(Layer):
    kind = "flatten"
    takes_tokens = True  # keeps the ids
    doc = "Turns a feature map into one vector (before the dense head)."
    category = "shape"
    example = Example({}, [(3, 4, 2)])

    def out_shape(self, o, shapes, dtypes):
        return (prod(shapes[0]),)

    def build(self, o, xs, *, train, name, defaults):
        x = xs[0]
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    kind = "reshape"
    takes_tokens = True
    doc = "Gives the tensor a new shape (without batch); one axis may be -1."
    shorthand = "shape"
    category = "shape"
    example = Example({"shape": [-1, 4]}, [(2, 3, 4)])

    class Options(Options):
        shape: list[int] = Field(description="the new shape without the batch axis; one axis "
                                             "may be -1")

    def out_shape(self, o, shapes, dtypes):
        total, target = prod(shapes[0]), list(o.shape)
        if target.count(-1) > 1 or any(t == 0 or t < -1 for t in target):
            raise ShapeError("shape may contain one -1 and otherwise positive sizes",
                             expected="positive sizes and at most one -1", found=str(target),
                             field="shape")
        known = prod(t for t in target if t != -1)
        if -1 in target:
            if total % known:
                raise ShapeError("cannot infer the -1 axis", expected=f"a divisor of {total}",
                                 found=str(target), field="shape")
            target[target.index(-1)] = total // known
        if prod(target) != total:
            raise ShapeError("reshape must keep the number of elements",
                             expected=f"{total} elements, as in the input {fmt_shape(shapes[0])}",
                             found=f"{fmt_shape(target)}: {prod(target)} elements", field="shape",
                             hint="write -1 for one axis to have its size inferred")
        return tuple(target)

    def label(self, o, rank, default_activation=None):
        return f"reshape {fmt_dims(o.shape)}"

    def build(self, o, xs, *, train, name, defaults):
        return xs[0].reshape(xs[0].shape[0], *o.shape)


class Dropout(Layer):
    kind = "dropout"
    doc = "Zeroes a fraction `rate` of activations while training; identity at evaluation."
    shorthand = "rate"
    category = "shape"
    example = Example({"rate": 0.25}, [(6,)])

    class Options(Options):
        rate: float = Field(ge=0.0, lt=1.0, description="fraction of activations zeroed")

    def out_shape(self, o, shapes, dtypes):
        if not 0.0 <= o.rate < 1.0:
            raise ShapeError("rate must be in [0, 1)", found=str(o.rate), field="rate")
        return shapes[0]

    def label(self, o, rank, default_activation=None):
        return f"{self.kind} {o.rate:g}"

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        return nn.Dropout(o.rate, deterministic=not train, name=name)(xs[0])


class DropPath(Dropout):
    kind = "drop_path"
    doc = ("Stochastic depth (Huang et al. 2016; timm's DropPath): while training, zeroes the "
           "whole input of an example with probability `rate` and scales the kept ones by "
           "1/(1 − rate); identity at evaluation. Usually set as a residual's `drop_path:`.")
    shorthand = "rate"
    category = "shape"
    example = Example({"rate": 0.2}, [(3, 3, 2)])

    class Options(Dropout.Options):
        rate: float = Field(ge=0.0, lt=1.0, description="probability an example's branch "
                                                        "is dropped")

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        x = xs[0]  # one draw per example: the mask broadcasts over every other axis
        return nn.Dropout(o.rate, broadcast_dims=tuple(range(1, x.ndim)),
                          deterministic=not train, name=name)(x)
