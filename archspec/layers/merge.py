"""Merges of several nodes: add (residual), concat (Inception, DenseNet), multiply."""
from __future__ import annotations

from archspec.fmt import fmt_shape
from pydantic import Field

from archspec.layers.base import Example, Layer, Options, ShapeError


class Add(Layer):
    kind = "add"
    n_inputs = None
    doc = "Element-wise sum of equally shaped inputs (a residual connection)."
    category = "merge"
    example = Example({}, [(4, 4, 3), (4, 4, 3), (4, 4, 3)])

    def out_shape(self, o, shapes, dtypes):
        first = shapes[0]
        for s in shapes[1:]:
            if s != first:
                hint = None
                if len(s) == len(first) and len(s) >= 2:
                    ratio = [a // b for a, b in zip(s[:-1], first[:-1]) if b and a % b == 0]
                    stride = max(ratio + [a // b for a, b in zip(first[:-1], s[:-1])
                                          if b and a % b == 0] or [1])
                    hint = ("add a 1×1 projection shortcut"
                            + (f" with stride {stride}" if stride > 1 else "")
                            + f" and {max(s[-1], first[-1])} maps"
                            + " (residual: {shortcut: projection})")
                raise ShapeError(f"{self.kind} needs inputs of one shape",
                                 expected=fmt_shape(first), found=fmt_shape(s), hint=hint,
                                 field="inputs")
        return first

    def build(self, o, xs, *, train, name, defaults):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(Add):
    kind = "multiply"
    doc = "Element-wise product of equally shaped inputs (gating)."

    def build(self, o, xs, *, train, name, defaults):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(Layer):
    kind = "concat"
    n_inputs = None
    doc = "Stacks inputs along the channel axis (Inception, DenseNet); other axes must agree."
    category = "merge"
    example = Example({"axis": 1}, [(4, 2, 3), (4, 5, 3)])

    class Options(Options):
        axis: int = Field(-1, description="the axis to stack along (without the batch axis); "
                                          "default: the channels")

    def out_shape(self, o, shapes, dtypes):
        first = shapes[0]
        rank = len(first)
        if not -rank <= o.axis < rank:
            raise ShapeError("axis out of range", expected=f"-{rank} to {rank - 1}",
                             found=str(o.axis), field="axis")
        ax = o.axis % rank
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != ax):
                raise ShapeError("concat needs inputs that agree on every axis but the "
                                 "concatenated one",
                                 expected=fmt_shape((*first[:ax], "*", *first[ax + 1:])),
                                 found=fmt_shape(s),
                                 hint="give every branch the same stride and 'same' padding",
                                 field="inputs")
        return (*first[:ax], sum(s[ax] for s in shapes), *first[ax + 1:])

    def build(self, o, xs, *, train, name, defaults):
        import jax.numpy as jnp

        return jnp.concatenate(xs, axis=o.axis if o.axis < 0 else o.axis + 1)
