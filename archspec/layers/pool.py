"""Pooling: max, min or average; windowed, global, or adaptive (fixed output size)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.fmt import fmt_shape
from archspec.layers.base import (GLOBAL, Example, IntOrList, Layer, Options, Padding, ShapeError,
                                  as_tuple, uniform_text, window_text,
                                  pad_pairs, window_out)


class Pool(Layer):
    kind = "pool"
    spatial = True
    category = "pool"
    example = Example({"op": "avg", "size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                      [(7, 6, 2)])
    doc = ("Keeps one value per window: the max (strongest signal), min or average. "
           "`global: true` pools each map to one value; `adaptive: [7, 7]` pools to a fixed size. "
           "A windowed average divides by the window including explicit padding "
           "(`count_include_pad: true`, PyTorch's default) or by the input values it covers "
           "(`false`: TensorFlow's 'same').")

    class Options(Options):
        op: Literal["max", "min", "avg"] = "max"
        size: IntOrList | None = Field(None, description="window size")
        stride: IntOrList | None = Field(None, description="default: `size`")
        padding: Padding = Field("valid", description="as for conv; an explicit padding is at "
                                                      "most half the window")
        ceil_mode: bool = Field(False, description="round the output size up (PyTorch's "
                                                   "`ceil_mode`)")
        global_: bool = Field(False, alias="global", description="pool each map to one value")
        adaptive: IntOrList | None = Field(None, description="pool to this fixed output size")
        keepdims: bool = Field(False, description="with `global`, keep the spatial axes as "
                                                  "size 1")
        count_include_pad: bool | None = Field(
            None, description="windowed `op: avg` only: whether explicit padding counts in "
                              "the divisor; default: `true`")

    def mode(self, o):
        chosen = [m for m, on in (("size", o.size is not None), ("global", o.global_),
                                  ("adaptive", o.adaptive is not None)) if on]
        if len(chosen) != 1:
            raise ShapeError("pool needs exactly one of size, global or adaptive",
                             expected="size: K, global: true, or adaptive: N",
                             found=", ".join(chosen) or "none of them", field="size",
                             hint="a pool is windowed (size), global or adaptive: keep one")
        return chosen[0]

    def check_count(self, o, mode):
        """`count_include_pad` only changes a windowed average: refuse it elsewhere."""
        if o.count_include_pad is None:
            return
        if o.op != "avg":
            raise ShapeError(f"count_include_pad only applies to op: avg, not op: {o.op}",
                             expected="op: avg", found=f"op: {o.op}", field="count_include_pad",
                             hint=f"a {o.op} pool never counts padding: remove "
                                  "count_include_pad")
        if mode != "size":
            raise ShapeError(f"count_include_pad does not apply to a {mode} pool",
                             expected="a windowed pool (size: K)", found=f"{mode}: "
                             + str(o.adaptive if mode == "adaptive" else "true"),
                             field="count_include_pad",
                             hint=f"a {mode} pool has no padding: remove count_include_pad")

    def geometry(self, o, shape):
        n = len(shape) - 1
        if n < 1:
            raise ShapeError("pool needs a spatial input", expected="rank 2 to 4 (channels last)",
                             found=fmt_shape(shape),
                             hint="pooling works on feature maps, not vectors")
        k = as_tuple(o.size, n, "size")
        s = as_tuple(o.stride if o.stride is not None else o.size, n, "stride")
        if min(k) < 1 or min(s) < 1:
            raise ShapeError("size and stride must be positive", found=f"{k}, {s}", field="size")
        pads = pad_pairs(o.padding, k, s, (1,) * n, shape[:-1])
        return k, s, pads

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        mode = self.mode(o)
        self.check_count(o, mode)
        n = len(shape) - 1
        if n < 1:
            raise ShapeError("pool needs a spatial input", expected="rank 2 to 4 (channels last)",
                             found=fmt_shape(shape),
                             hint="pooling works on feature maps, not vectors")
        if mode == "global":
            return (*(1,) * n, shape[-1]) if o.keepdims else (shape[-1],)
        if mode == "adaptive":
            out = as_tuple(o.adaptive, n, "adaptive")
            if min(out) < 1:
                raise ShapeError("adaptive output size must be positive", found=str(out),
                                 field="adaptive")
            return (*out, shape[-1])
        k, s, pads = self.geometry(o, shape)
        out = []
        for size, kk, ss, (lo, hi) in zip(shape[:-1], k, s, pads):
            if kk > size + lo + hi:
                raise ShapeError(f"pool window {kk} is larger than the padded input "
                                 f"{size + lo + hi}", expected=f"size <= {size + lo + hi}",
                                 found=f"size {kk}", field="size",
                                 hint="the feature map is already this small; remove this pool "
                                      "or use a smaller window")
            if max(lo, hi) > kk // 2 and o.padding not in ("same", "valid"):
                raise ShapeError("padding should be at most half the window",
                                 expected=f"<= {kk // 2}", found=str(o.padding), field="padding")
            out.append(window_out(size, kk, ss, 1, lo, hi, o.ceil_mode))
        return (*out, shape[-1])

    def window(self, o, shapes):
        if self.mode(o) == "global" or (self.mode(o) == "adaptive" and all(
                a == 1 for a in as_tuple(o.adaptive, len(shapes[0]) - 1, "adaptive"))):
            return GLOBAL  # each output value reads the whole map
        if self.mode(o) != "size":
            return None  # adaptive bins differ in size: no single receptive field
        k, s, _ = self.geometry(o, shapes[0])
        return list(zip(k, s))

    def label(self, o, rank, default_activation=None):
        if o.global_:
            return f"global {o.op} pool"
        if o.adaptive is not None:
            return f"adaptive {o.op} pool → {window_text(o.adaptive, rank)}"
        text = f"{o.op} pool {window_text(o.size, rank)}"
        if o.stride is not None and o.stride != o.size:
            text += f"/{uniform_text(o.stride)}"
        return text

    def build(self, o, xs, *, train, name, defaults):
        from archspec.layers import pooling_ops as ops

        x = xs[0]
        mode = self.mode(o)
        if mode == "global":
            return ops.global_pool(x, o.op, o.keepdims)
        if mode == "adaptive":
            return ops.adaptive_pool(x, o.op, as_tuple(o.adaptive, x.ndim - 2, "adaptive"))
        k, s, pads = self.geometry(o, x.shape[1:])
        out = self.out_shape(o, [x.shape[1:]], None)
        return ops.window_pool(x, o.op, k, s, pads, out[:-1],
                               count_pad=o.count_include_pad is not False)
