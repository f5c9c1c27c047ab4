"""Transposed convolution ("deconvolution"), 1-D, 2-D or 3-D: the convolution that goes up in
resolution (U-Net's up-convolutions, DCGAN generators)."""
from __future__ import annotations

from fractions import Fraction

from pydantic import Field

from archspec.fmt import fmt_shape, prod
from archspec.layers import activation
from archspec.layers.base import Example, IntOrList, ShapeError, as_tuple
from archspec.layers.conv import Conv
from archspec.layers.init import initializer


def same_pads(eff: int, s: int) -> tuple[int, int]:
    """XLA's 'SAME' for a transposed convolution (output = input × stride), as the padding
    of the equivalent convolution over the stride-dilated input."""
    total = s + eff - 2
    lo = eff - 1 if s > eff - 1 else -(-total // 2)
    return lo, total - lo


class ConvTranspose(Conv):
    kind = "conv_transpose"
    spatial = True
    category = "conv"
    feature_maps = True
    example = Example({"maps": 4, "kernel": 3, "stride": 2, "padding": 1,
                       "output_padding": 1, "groups": 2}, [(4, 5, 2)],
                      defaults={"activation": "relu"})
    doc = ("The transpose of a strided convolution: each input value adds `kernel` × `maps` "
           "weighted copies of itself to an output `stride` times larger, as PyTorch's "
           "`ConvTranspose`: output = (input − 1)·stride − padding (both sides) + "
           "dilation·(kernel − 1) + output_padding + 1; `padding: same` gives input × stride "
           "(Keras, Flax). The kernel is applied as a convolution over the stride-dilated "
           "input (Flax's layout; PyTorch's weight is it flipped in space).")

    class Options(Conv.Options):
        output_padding: IntOrList = Field(0, description="added to one side of the output, "
                                                         "to pick among the sizes a stride "
                                                         "maps onto one input size")

    rank_hint = None

    def geometry(self, o, shape):
        """(kernel, stride, dilation, (lo, hi) padding of the equivalent convolution)."""
        k, s, d, given = super().geometry(o, shape)  # conv's checks; `given` for explicit padding
        op = as_tuple(o.output_padding, len(k), "output_padding")
        eff = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
        for p, ss, dd in zip(op, s, d):
            if not 0 <= p < max(ss, dd):
                raise ShapeError("output_padding must be smaller than the stride or the "
                                 "dilation", expected=f"0 to {max(ss, dd) - 1}", found=str(p),
                                 field="output_padding")
        if o.padding == "same":
            if any(op):
                raise ShapeError("output_padding does not apply with padding: same",
                                 expected="output_padding: 0", found=str(o.output_padding),
                                 field="output_padding",
                                 hint="same already gives input × stride")
            pads = [same_pads(e, ss) for e, ss in zip(eff, s)]
        else:
            pads = [(e - 1 - lo, e - 1 - hi + p) for e, (lo, hi), p in zip(eff, given, op)]
        return k, s, d, pads

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        k, s, d, pads = self.geometry(o, shape)
        self.check_channels(o, shape[-1])
        out = [(n - 1) * ss + 1 + lo + hi - (kk - 1) * dd
               for n, kk, ss, dd, (lo, hi) in zip(shape[:-1], k, s, d, pads)]
        if min(out) < 1:
            raise ShapeError("padding removes the whole output", expected="less padding",
                             found=f"output {fmt_shape(tuple(out))}", field="padding")
        if o.activation is not None:
            activation.parse(o.activation)
        return (*out, o.maps)

    def macs(self, o, shapes, out):
        # every input value times every tap of its group's maps (the zeros of the dilated
        # input are not work)
        k, *_ = self.geometry(o, shapes[0])
        return prod(shapes[0]) * prod(k) * (o.maps // o.groups)

    def window(self, o, shapes):
        # an output value gathers from at most ceil(extent / stride) neighbouring inputs,
        # and neighbouring outputs are 1/stride input steps apart
        k, s, d, _ = self.geometry(o, shapes[0])
        return [(-(-((kk - 1) * dd + 1) // ss), Fraction(1, ss)) for kk, ss, dd in zip(k, s, d)]

    def build(self, o, xs, *, train, name, defaults):
        from archspec.layers import conv_ops
        from archspec.layers.learned import learned

        x = xs[0]
        n = x.ndim - 2
        k, s, d, pads = self.geometry(o, x.shape[1:])
        bias = defaults.bias if o.bias is None else o.bias
        specs = [("kernel", (*k, x.shape[-1] // o.groups, o.maps),
                  initializer(o.init or defaults.init, defaults.shapes_only))]
        if bias:
            specs.append(("bias", (o.maps,), initializer(o.bias_init or defaults.bias_init,
                                                         defaults.shapes_only)))
        kernel, *b = learned(name, *specs)
        dt = defaults.compute_dtype or x.dtype
        spatial = "DHW"[3 - n:]
        lowering = conv_ops.conv_in_loop if defaults.in_loop else conv_ops.conv_general_dilated
        y = lowering(x.astype(dt), kernel.astype(dt), (1,) * n, pads, lhs_dilation=s,
                     rhs_dilation=d,
                     dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"),
                     feature_group_count=o.groups)
        if b:
            y = y + b[0].astype(dt)
        act = self.output_activation(o, defaults.activation)
        return activation.apply(act, y) if act else y
