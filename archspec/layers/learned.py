"""Learned tensors without a weighted sum: a per-channel `scale` (ConvNeXt's layer scale,
CaiT) and a `parameter` node (ViT's class token and position table)."""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from archspec.fmt import fmt_shape, prod
from archspec.layers.base import Example, InitSpec, Layer, Options, ShapeError
from archspec.layers.init import initializer


@lru_cache(maxsize=None)
def _tensors_module():
    """A Flax module holding learned tensors (made on first use: importing flax at start-up
    is slow)."""
    import flax.linen as nn

    class Tensors(nn.Module):
        specs: tuple  # (param name, shape, initialiser) per tensor

        @nn.compact
        def __call__(self):
            return tuple(self.param(p, init, shape) for p, shape, init in self.specs)

    return Tensors


def learned(name: str, *specs: tuple) -> tuple:
    """The learned tensors `params[name][param name]`, one per (param name, shape,
    initialiser), created on first call."""
    return _tensors_module()(tuple((p, tuple(s), i) for p, s, i in specs), name=name)()


class Scale(Layer):
    kind = "scale"
    doc = ("Multiplies each channel (the last axis) by a learned factor: ConvNeXt's layer "
           "scale, initialised small (`init: {constant: 1.0e-6}`).")
    category = "norm"
    example = Example({"init": {"constant": 0.5}}, [(3, 3, 4)])

    class Options(Options):
        init: InitSpec | None = Field(None, description="the factors' initialiser; "
                                                        "default: `ones`")

    def params(self, o, shapes, out, defaults):
        return shapes[0][-1], 0

    def macs(self, o, shapes, out):
        return prod(out)

    def build(self, o, xs, *, train, name, defaults):
        x = xs[0]
        (gamma,) = learned(name, ("scale", (x.shape[-1],),
                                  initializer(o.init or "ones", defaults.shapes_only)))
        return x * gamma.astype(x.dtype)


class Parameter(Layer):
    kind = "parameter"
    doc = ("A learned tensor of `shape`, repeated for every example of its input's batch "
           "(the input is read only for its batch size): a class token (`shape: [1, 768]`, "
           "then `concat` along axis 0) or a position table to `add`.")
    shorthand = "shape"
    category = "other"
    example = Example({"shape": [1, 4], "init": {"normal": 0.02}}, [(3, 4)])

    class Options(Options):
        shape: list[int] = Field(description="the tensor's shape, without the batch axis")
        init: InitSpec | None = Field(None, description="default: `zeros` (ViT's class token)")

    def out_shape(self, o, shapes, dtypes):
        if not o.shape or min(o.shape) < 1:
            raise ShapeError("shape needs one or more positive sizes",
                             expected="e.g. [1, 768]", found=str(o.shape), field="shape")
        return tuple(o.shape)

    def out_dtype(self, o, dtypes):
        return "float32"

    def params(self, o, shapes, out, defaults):
        return prod(o.shape), 0

    def keeps_rf(self, o, shapes):
        return False  # a learned constant: it reads its input for the batch size only

    def label(self, o, rank, default_activation=None):
        return f"parameter {fmt_shape(o.shape)}"

    def build(self, o, xs, *, train, name, defaults):
        import jax.numpy as jnp

        (value,) = learned(name, ("value", o.shape,
                                  initializer(o.init or "zeros", defaults.shapes_only)))
        return jnp.broadcast_to(value, (xs[0].shape[0], *o.shape))
