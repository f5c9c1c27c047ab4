"""Padding a feature map's spatial axes, as its own layer: Keras's ZeroPadding1D/2D/3D,
PyTorch's ZeroPad2d, ConstantPad, ReflectionPad, ReplicationPad and CircularPad. A
convolution's own `padding:` pads with zeros only; this pads once before any layer."""
from __future__ import annotations

from typing import Literal, Union

from pydantic import Field

from archspec.fmt import fmt_shape
from archspec.layers.base import Example, Layer, Options, ShapeError, pad_pairs

JNP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
            "circular": "wrap"}


class Pad(Layer):
    kind = "pad"
    shorthand = "padding"
    spatial = True
    category = "shape"
    example = Example({"padding": [[1, 2], [0, 3]], "mode": "reflect"}, [(4, 5, 2)])
    doc = ("Pads the spatial axes, channels unchanged: `- pad: 1`, or `[[lo, hi], ...]` per "
           "axis; `mode` `constant` (`value`, default 0: Keras's ZeroPadding2D), `reflect`, "
           "`replicate` or `circular` (PyTorch's padding modes).")

    class Options(Options):
        padding: Union[int, list[int], list[list[int]]] = Field(
            description="an int (each side of every spatial axis), a list (per axis), or "
            "`[[lo, hi], ...]` (PyTorch's ZeroPad2d((left, right, top, bottom)) is "
            "`[[top, bottom], [left, right]]`)")
        mode: Literal["constant", "reflect", "replicate", "circular"] = Field(
            "constant", description="what the new positions hold: `value`, the input "
            "mirrored without repeating its edge, the edge repeated, or the input wrapped "
            "around")
        value: float = Field(0.0, description="the value `constant` pads with")

    def _pairs(self, o, shape) -> list[tuple[int, int]]:
        spatial = shape[:-1]
        if not spatial:
            raise ShapeError("pad needs a feature map with spatial axes",
                             expected="(length, channels), (height, width, channels), ...",
                             found=fmt_shape(shape))
        n = len(spatial)
        pairs = pad_pairs(o.padding, (1,) * n, (1,) * n, (1,) * n, spatial)
        if any(v < 0 for p in pairs for v in p):
            raise ShapeError("padding must not be negative", expected=">= 0",
                             found=str(o.padding), field="padding",
                             hint="to crop, use a slice layer")
        if o.value != 0.0 and o.mode != "constant":
            raise ShapeError(f"value pads in mode constant only, not {o.mode}",
                             expected="mode: constant", found=f"mode: {o.mode}", field="value")
        # reflect mirrors without the edge: at most size - 1 new positions per side
        # (PyTorch's rule); circular wraps once around: at most size
        limit = {"reflect": 1, "circular": 0}.get(o.mode)
        for size, (lo, hi) in zip(spatial, pairs):
            if limit is not None and max(lo, hi) > size - limit:
                raise ShapeError(f"{o.mode} padding of {max(lo, hi)} on an axis of {size}",
                                 expected=f"at most {size - limit} per side",
                                 found=str(o.padding), field="padding",
                                 hint="pad less, or use mode replicate or constant")
        return pairs

    def out_shape(self, o, shapes, dtypes):
        shape = shapes[0]
        pairs = self._pairs(o, shape)
        return (*(s + lo + hi for s, (lo, hi) in zip(shape[:-1], pairs)), shape[-1])

    def window(self, o, shapes):
        self._pairs(o, shapes[0])
        return [(1, 1)] * (len(shapes[0]) - 1)  # each output reads one input (or none)

    def label(self, o, rank, default_activation=None):
        pairs = self._pairs(o, (1 << 30,) * rank + (1,)) if rank else []
        sides = ", ".join(f"{lo}+{hi}" if lo != hi else str(lo) for lo, hi in pairs)
        return f"pad {sides}" + ("" if o.mode == "constant" else f", {o.mode}")

    def build(self, o, xs, *, train, name, defaults):
        import jax.numpy as jnp

        x = xs[0]
        pairs = [(0, 0), *self._pairs(o, x.shape[1:]), (0, 0)]
        if o.mode == "constant":
            return jnp.pad(x, pairs, constant_values=jnp.asarray(o.value, x.dtype))
        return jnp.pad(x, pairs, mode=JNP_MODE[o.mode])
