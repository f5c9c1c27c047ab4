"""Upsampling by interpolation, for decoders (U-Net, FPN): no weights, a larger map."""
from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import Field

from archspec.fmt import fmt_shape, prod
from archspec.layers.base import Example, IntOrList, Layer, Options, ShapeError, as_tuple

LINEAR_RANK = {"bilinear": 2, "trilinear": 3}  # PyTorch's names pin the number of axes


class Upsample(Layer):
    kind = "upsample"
    spatial = True
    category = "pool"
    feature_maps = True
    example = Example({"factor": [2, 3], "method": "bilinear"}, [(3, 4, 2)])
    doc = ("Enlarges a feature map by `factor` (or to `size`) per spatial axis, channels "
           "unchanged: `nearest` repeats values (PyTorch's `nearest-exact`; `nearest_floor` "
           "is PyTorch's `nearest`), `linear` (`bilinear`, `trilinear`) interpolates between "
           "the nearest input values with half-pixel centres (PyTorch's "
           "`align_corners=False`).")

    class Options(Options):
        factor: IntOrList | None = Field(None, description="output = input × factor, per axis")
        size: IntOrList | None = Field(None, description="the output's spatial size")
        method: Literal["nearest", "nearest_floor", "linear", "bilinear", "trilinear"] = Field(
            "nearest", description="`nearest`: the input nearest to each output's centre; "
            "`nearest_floor`: input index floor(i · in / out), PyTorch's `nearest` (the same "
            "for an integer factor); `linear` works on any number of axes")

    def _size(self, o, shape) -> tuple:
        n = len(shape) - 1
        if n < 1:
            raise ShapeError("upsample needs a feature map with spatial axes",
                             expected="(length, channels), (height, width, channels), ...",
                             found=fmt_shape(shape))
        if (o.factor is None) == (o.size is None):
            raise ShapeError("upsample needs exactly one of factor or size",
                             expected="factor: 2 or size: [H, W]",
                             found="both" if o.factor is not None else "neither",
                             field="factor")
        if o.method in LINEAR_RANK and LINEAR_RANK[o.method] != n:
            raise ShapeError(f"{o.method} interpolates {LINEAR_RANK[o.method]} axes but the "
                             f"input has {n}", expected="method: linear (any rank)",
                             found=f"method: {o.method}", field="method")
        field = "factor" if o.factor is not None else "size"
        values = as_tuple(getattr(o, field), n, field)
        if min(values) < 1:
            raise ShapeError(f"{field} must be positive", expected=">= 1",
                             found=str(list(values)), field=field)
        return tuple(s * f for s, f in zip(shape, values)) if field == "factor" else values

    def out_shape(self, o, shapes, dtypes):
        return (*self._size(o, shapes[0]), shapes[0][-1])

    def macs(self, o, shapes, out):
        # linear: each output value weighs 2 inputs per axis; nearest only copies
        return 0 if o.method.startswith("nearest") else prod(out) * 2 ** (len(out) - 1)

    def window(self, o, shapes):
        # an output value reads 1 (nearest) or 2 (linear) neighbouring inputs per axis, and
        # neighbouring outputs are input/output input steps apart: the jump shrinks
        k = 1 if o.method.startswith("nearest") else 2
        return [(k, Fraction(i, s)) for i, s in zip(shapes[0], self._size(o, shapes[0]))]

    def label(self, o, rank, default_activation=None):
        what = (f"×{'×'.join(map(str, as_tuple(o.factor, rank, 'factor')))}"
                if o.factor is not None else f"to {fmt_shape(as_tuple(o.size, rank, 'size'))}")
        return f"upsample {what}, {o.method}"

    def build(self, o, xs, *, train, name, defaults):
        import jax

        x = xs[0]
        size = self._size(o, x.shape[1:])
        if o.method == "nearest_floor":
            return _nearest_floor(x, size)
        method = "nearest" if o.method == "nearest" else "linear"
        return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), method=method,
                                antialias=False)


def _nearest_floor(x, size):
    """PyTorch's `nearest`: output i of each spatial axis reads input floor(i · in / out)."""
    import jax.numpy as jnp
    import numpy as np

    for axis, (n_in, n_out) in enumerate(zip(x.shape[1:-1], size), start=1):
        x = jnp.take(x, np.arange(n_out) * n_in // n_out, axis=axis)
    return x
