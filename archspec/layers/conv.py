"""Convolution, 1-D, 2-D or 3-D by the input's rank (channels last)."""
from __future__ import annotations

from archspec.layers import activation
from archspec.layers.base import (ActivationSpec, InitSpec, IntOrList, Layer, Options, Padding,
                                  ShapeError, as_tuple, fmt, pad_pairs, prod, window_out)
from archspec.layers.init import check_init, initializer


class Conv(Layer):
    kind = "conv"
    spatial = True
    doc = ("`maps` filters of size `kernel` slid with `stride` over a (padded) input; "
           "`groups` splits channels (groups = input channels = maps is depthwise).")

    class Options(Options):
        maps: int
        kernel: IntOrList
        stride: IntOrList = 1
        padding: Padding = "valid"
        dilation: IntOrList = 1
        groups: int = 1
        bias: bool | None = None
        activation: ActivationSpec | None = None
        init: InitSpec | None = None
        bias_init: InitSpec | None = None

    def geometry(self, o, shape):
        n = len(shape) - 1
        if n < 1 or n > 3:
            raise ShapeError("conv needs a (length, channels), (height, width, channels) or "
                             "(time, height, width, channels) input", expected="rank 2 to 4",
                             found=fmt(shape), hint="place conv before `flatten`, or `reshape` "
                                                    "the vector into a feature map")
        k, s, d = (as_tuple(getattr(o, f), n, f) for f in ("kernel", "stride", "dilation"))
        for f, v in (("kernel", k), ("stride", s), ("dilation", d)):
            if min(v) < 1:
                raise ShapeError(f"{f} must be positive", expected=">= 1", found=str(list(v)),
                                 field=f)
        pads = pad_pairs(o.padding, k, s, d, shape[:-1])
        if min(min(p) for p in pads) < 0:
            raise ShapeError("padding must not be negative", found=str(o.padding), field="padding")
        return k, s, d, pads

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        k, s, d, pads = self.geometry(o, shape)
        cin = shape[-1]
        if o.maps < 1:
            raise ShapeError("maps must be positive", expected=">= 1", found=str(o.maps),
                             field="maps")
        if o.groups < 1 or cin % o.groups or o.maps % o.groups:
            raise ShapeError("groups must divide both the input channels and maps",
                             expected=f"a divisor of {cin} and {o.maps}", found=str(o.groups),
                             field="groups", hint="depthwise: groups = input channels")
        out = []
        for size, kk, ss, dd, (lo, hi) in zip(shape[:-1], k, s, d, pads):
            eff = (kk - 1) * dd + 1
            if eff > size + lo + hi:
                raise ShapeError(f"kernel {eff} is larger than the padded input {size + lo + hi}",
                                 expected=f"kernel <= {size + lo + hi}", found=f"kernel {eff}",
                                 field="kernel",
                                 hint="use a smaller kernel, add padding, or remove a pooling "
                                      "layer before this one")
            out.append(window_out(size, kk, ss, dd, lo, hi))
        if o.activation is not None:
            activation.parse(o.activation)
        check_init(o.init, "init"), check_init(o.bias_init, "bias_init")
        return (*out, o.maps)

    def params(self, o, shapes, out, defaults):
        k, *_ = self.geometry(o, shapes[0])
        bias = defaults.bias if o.bias is None else o.bias
        return prod(k) * shapes[0][-1] // o.groups * o.maps + (o.maps if bias else 0), 0

    def macs(self, o, shapes, out):
        k, *_ = self.geometry(o, shapes[0])
        return prod(out) * prod(k) * (shapes[0][-1] // o.groups)

    def window(self, o, shapes):
        k, s, d, _ = self.geometry(o, shapes[0])
        return [((kk - 1) * dd + 1, ss) for kk, ss, dd in zip(k, s, d)]

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        from archspec.layers import conv_ops

        x = xs[0]
        k, s, d, pads = self.geometry(o, x.shape[1:])
        y = nn.Conv(o.maps, k, strides=s, padding=pads, kernel_dilation=d,
                    feature_group_count=o.groups,
                    conv_general_dilated=conv_ops.conv_general_dilated,
                    use_bias=defaults.bias if o.bias is None else o.bias,
                    kernel_init=initializer(o.init or defaults.init),
                    bias_init=initializer(o.bias_init or defaults.bias_init),
                    dtype=defaults.compute_dtype, name=name)(x)
        act = o.activation if o.activation is not None else defaults.activation
        return activation.apply(act, y) if act else y
