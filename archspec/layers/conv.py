"""Convolution, 1-D, 2-D or 3-D by the input's rank (channels last)."""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from archspec.fmt import fmt_shape, prod
from archspec.layers import activation
from archspec.layers.activation import ActivationSpec
from archspec.layers.base import (Example, InitSpec, IntOrList, Layer, Options, Padding,
                                  ShapeError, as_tuple, pad_pairs, uniform_text, window_out,
                                  window_text, with_activation)
from archspec.layers.init import check_init, initializer


def _frozen(v):
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


def _thawed(v):
    return [_thawed(x) for x in v] if isinstance(v, tuple) else v


@lru_cache(maxsize=4096)
def _geometry(kind, rank_hint, kernel, stride, dilation, padding, shape):
    """(kernel, stride, dilation, (lo, hi) pads) per spatial axis, checked: the input's rank,
    positive kernel, stride and dilation, padding not negative. Pure and cached: out_shape,
    params, macs, window and build all ask for it (ResNet-50: 212 calls for 53 convs)."""
    n = len(shape) - 1
    if n < 1 or n > 3:
        raise ShapeError(f"{kind} needs a (length, channels), (height, width, channels) or "
                         "(time, height, width, channels) input", expected="rank 2 to 4",
                         found=fmt_shape(shape), hint=rank_hint)
    k, s, d = (as_tuple(_thawed(v), n, f) for v, f in ((kernel, "kernel"), (stride, "stride"),
                                                         (dilation, "dilation")))
    for f, v in (("kernel", k), ("stride", s), ("dilation", d)):
        if min(v) < 1:
            raise ShapeError(f"{f} must be positive", expected=">= 1", found=str(list(v)),
                             field=f)
    pads = pad_pairs(_thawed(padding), k, s, d, shape[:-1])
    if min(min(p) for p in pads) < 0:
        raise ShapeError("padding must not be negative", found=str(_thawed(padding)),
                         field="padding")
    return k, s, d, tuple(tuple(p) for p in pads)


class Conv(Layer):
    kind = "conv"
    spatial = True
    category = "conv"
    feature_maps = True
    example = Example({"maps": 4, "kernel": 3, "stride": 2, "padding": 1, "groups": 2},
                      [(9, 9, 2)], defaults={"activation": "relu"})
    doc = ("`maps` filters of size `kernel` slid with `stride` over a (padded) input; "
           "`groups` splits channels (groups = input channels = maps is depthwise).")

    class Options(Options):
        maps: int = Field(description="output channels (filters)")
        kernel: IntOrList = Field(description="window size, one int or one per spatial axis")
        stride: IntOrList = Field(1, description="step between windows")
        padding: Padding = Field("valid", description=(
            "`valid`, `same`, an int (each side), a list (per axis), or `[[lo, hi], ...]`"))
        dilation: IntOrList = Field(1, description="spacing of the kernel's taps")
        groups: int = Field(1, description="splits the channels; groups = input channels = "
                                           "maps is depthwise")
        bias: bool | None = Field(None, description="default: `defaults.bias`")
        activation: ActivationSpec | None = Field(None, description="default: "
                                                                     "`defaults.activation`")
        init: InitSpec | None = Field(None, description="default: `defaults.init`")
        bias_init: InitSpec | None = Field(None, description="default: `defaults.bias_init`")

    rank_hint = "place conv before `flatten`, or `reshape` the vector into a feature map"

    def geometry(self, o, shape):
        return _geometry(self.kind, self.rank_hint, _frozen(o.kernel), _frozen(o.stride),
                         _frozen(o.dilation), _frozen(o.padding), tuple(shape))

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        k, s, d, pads = self.geometry(o, shape)
        self.check_channels(o, shape[-1])
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

    def check_channels(self, o, cin: int) -> None:
        if o.maps < 1:
            raise ShapeError("maps must be positive", expected=">= 1", found=str(o.maps),
                             field="maps")
        if o.groups < 1 or cin % o.groups or o.maps % o.groups:
            raise ShapeError("groups must divide both the input channels and maps",
                             expected=f"a divisor of {cin} and {o.maps}", found=str(o.groups),
                             field="groups", hint="depthwise: groups = input channels")

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

    def output_activation(self, o, default):
        return o.activation if o.activation is not None else default

    def label(self, o, rank, default_activation=None):
        text = f"{self.kind} {window_text(o.kernel, rank)}"
        if uniform_text(o.stride) != "1":
            text += f"/{uniform_text(o.stride)}"
        if uniform_text(o.dilation) != "1":
            text += f" dilation {uniform_text(o.dilation)}"
        text += f", {o.maps}" + (f", groups {o.groups}" if o.groups != 1 else "")
        return with_activation(text, self.output_activation(o, default_activation))

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        from archspec.layers import conv_ops

        x = xs[0]
        k, s, d, pads = self.geometry(o, x.shape[1:])
        lowering = conv_ops.conv_in_loop if defaults.in_loop else conv_ops.conv_general_dilated
        y = nn.Conv(o.maps, k, strides=s, padding=list(pads), kernel_dilation=d,
                    feature_group_count=o.groups, conv_general_dilated=lowering,
                    use_bias=defaults.bias if o.bias is None else o.bias,
                    kernel_init=initializer(o.init or defaults.init, defaults.shapes_only),
                    bias_init=initializer(o.bias_init or defaults.bias_init,
                                          defaults.shapes_only),
                    dtype=defaults.compute_dtype, name=name)(x)
        act = self.output_activation(o, defaults.activation)
        return activation.apply(act, y) if act else y
