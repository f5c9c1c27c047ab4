"""Normalisation: batch norm, layer norm, and local response normalisation (AlexNet, ZF Net)."""
from __future__ import annotations

from archspec.fmt import fmt_shape
from pydantic import Field

from archspec.layers.base import Example, Layer, Options, ShapeError


class BatchNorm(Layer):
    kind = "batchnorm"
    doc = ("Normalises each channel with batch statistics while training and running "
           "averages at evaluation. `momentum` 0.9 equals PyTorch's momentum 0.1; the running "
           "variance averages the biased batch variance (the Flax and Keras convention). "
           "The variance is computed in two passes, mean((x - mean)²), which stays accurate "
           "when a channel's mean is large against its spread.")

    category = "norm"
    example = Example({"momentum": 0.8, "center": False}, [(5, 5, 3)])

    class Options(Options):
        momentum: float = Field(0.9, description="weight of the old running average: 0.9 here "
                                                 "is PyTorch's `momentum=0.1`")
        epsilon: float = Field(1e-5, description="GoogLeNet in torchvision uses `1e-3`")
        scale: bool = Field(True, description="learn γ")
        center: bool = Field(True, description="learn β")

    def params(self, o, shapes, out, defaults):
        c = shapes[0][-1]
        return c * (int(o.scale) + int(o.center)), 2 * c

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        return nn.BatchNorm(use_running_average=not train, momentum=o.momentum,
                            epsilon=o.epsilon, use_scale=o.scale, use_bias=o.center,
                            use_fast_variance=False,  # E[x²] - E[x]² cancels catastrophically
                            dtype=defaults.compute_dtype, name=name)(xs[0])


class LayerNorm(Layer):
    kind = "layernorm"
    doc = ("Normalises each example over its last axis (two-pass variance, like batchnorm).")
    category = "norm"
    example = Example({}, [(4, 6)])

    class Options(Options):
        epsilon: float = Field(1e-5, description="added to the variance")

    def params(self, o, shapes, out, defaults):
        return 2 * shapes[0][-1], 0

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        return nn.LayerNorm(epsilon=o.epsilon, use_fast_variance=False,
                            dtype=defaults.compute_dtype, name=name)(xs[0])


class LRN(Layer):
    kind = "lrn"
    doc = ("Local response normalisation across channels: "
           "b = a / (k + alpha/size * sum of a² over `size` neighbouring maps)^beta "
           "(PyTorch's convention; AlexNet: size 5, alpha 1e-4, beta 0.75, k 2).")

    category = "norm"
    example = Example({"size": 3}, [(4, 4, 6)])

    class Options(Options):
        size: int = Field(5, description="neighbouring maps summed over")
        alpha: float = Field(1e-4, description="scale of the sum")
        beta: float = Field(0.75, description="exponent")
        k: float = Field(2.0, description="additive constant")

    def out_shape(self, o, shapes, dtypes):
        if o.size < 1:
            raise ShapeError("size must be positive", found=str(o.size), field="size")
        if len(shapes[0]) < 2:
            raise ShapeError("lrn normalises across the maps of a feature map",
                             expected="(..., channels) with spatial axes",
                             found=fmt_shape(shapes[0]))
        return shapes[0]

    def build(self, o, xs, *, train, name, defaults):
        import jax.numpy as jnp
        from jax import lax

        x = xs[0]
        sq = jnp.square(x)
        lo, hi = o.size // 2, (o.size - 1) // 2
        window = (1,) * (x.ndim - 1) + (o.size,)
        pads = [(0, 0)] * (x.ndim - 1) + [(lo, hi)]
        total = lax.reduce_window(sq, 0.0, lax.add, window, (1,) * x.ndim, pads)
        return x / jnp.power(o.k + (o.alpha / o.size) * total, o.beta)
