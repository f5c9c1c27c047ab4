"""Tensor plumbing without weights: slice (a channel split), select (one index, such as ViT's
class token), permute, and ShuffleNet's channel_shuffle. Axes count without the batch axis;
negative axes count from the end (-1: the channels)."""
from __future__ import annotations

from pydantic import Field

from archspec.fmt import fmt_shape
from archspec.layers.base import Example, Layer, Options, ShapeError


def _axis(axis: int, shape, field: str = "axis") -> int:
    rank = len(shape)
    if not -rank <= axis < rank:
        raise ShapeError("axis out of range", expected=f"-{rank} to {rank - 1} (the input "
                                                        f"{fmt_shape(shape)}, without batch)",
                         found=str(axis), field=field)
    return axis % rank


class Slice(Layer):
    kind = "slice"
    category = "shape"
    example = Example({"axis": -1, "start": 1, "stop": 4}, [(3, 3, 6)])
    doc = ("Keeps indices `start` to `stop` (exclusive) of one axis, like Python's "
           "`x[start:stop]`: two slices of the channels are ShuffleNetV2's channel split.")

    class Options(Options):
        axis: int = Field(-1, description="the axis to cut; default: the channels")
        start: int = Field(0, description="first index kept; negative counts from the end")
        stop: int | None = Field(None, description="first index not kept; default: the end")

    def _range(self, o, shape) -> range:
        n = shape[_axis(o.axis, shape)]
        kept = range(n)[slice(o.start, o.stop)]
        if not len(kept):
            raise ShapeError("the slice keeps nothing", expected=f"indices within 0..{n - 1}",
                             found=f"start {o.start}, stop {o.stop}", field="start")
        return kept

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        ax = _axis(o.axis, shape)
        return (*shape[:ax], len(self._range(o, shape)), *shape[ax + 1:])

    def label(self, o, rank, default_activation=None):
        return f"slice {o.start}:{'' if o.stop is None else o.stop} of axis {o.axis}"

    def build(self, o, xs, *, train, name, defaults):
        x = xs[0]
        ax = _axis(o.axis, x.shape[1:]) + 1
        r = self._range(o, x.shape[1:])
        index = [slice(None)] * x.ndim
        index[ax] = slice(r.start, r.stop)
        return x[tuple(index)]


class Select(Layer):
    kind = "select"
    category = "shape"
    example = Example({"axis": 0, "index": -1}, [(4, 3)])
    doc = ("Takes one index of an axis and drops that axis: `axis: 0, index: 0` on a "
           "(tokens, features) sequence is ViT's class token.")

    class Options(Options):
        axis: int = Field(0, description="the axis to index")
        index: int = Field(0, description="negative counts from the end")

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        ax = _axis(o.axis, shape)
        if not -shape[ax] <= o.index < shape[ax]:
            raise ShapeError("index out of range", expected=f"-{shape[ax]} to {shape[ax] - 1}",
                             found=str(o.index), field="index")
        return (*shape[:ax], *shape[ax + 1:])

    def keeps_rf(self, o, shapes):
        return _axis(o.axis, shapes[0]) == len(shapes[0]) - 1  # a channel: positions stay

    def label(self, o, rank, default_activation=None):
        return f"select {o.index} of axis {o.axis}"

    def build(self, o, xs, *, train, name, defaults):
        import jax.numpy as jnp

        x = xs[0]
        return jnp.take(x, o.index, axis=_axis(o.axis, x.shape[1:]) + 1)


class Permute(Layer):
    kind = "permute"
    shorthand = "axes"
    category = "shape"
    example = Example({"axes": [1, 0, 2]}, [(2, 3, 4)])
    doc = "Reorders the axes (without the batch axis), like `jnp.transpose`: `[1, 0]` swaps two."

    class Options(Options):
        axes: list[int] = Field(description="the input axis for each output axis")

    def _axes(self, o, shape) -> list[int]:
        axes = [_axis(a, shape, "axes") for a in o.axes]
        if sorted(axes) != list(range(len(shape))):
            raise ShapeError("axes must name every axis once", expected=f"a permutation of "
                             f"{list(range(len(shape)))}", found=str(o.axes), field="axes")
        return axes

    def out_shape(self, o, shapes, dtypes):
        return tuple(shapes[0][a] for a in self._axes(o, shapes[0]))

    def keeps_rf(self, o, shapes):
        axes = self._axes(o, shapes[0])
        return axes == sorted(axes)

    def label(self, o, rank, default_activation=None):
        return f"permute {o.axes}"

    def build(self, o, xs, *, train, name, defaults):
        x = xs[0]
        return x.transpose(0, *(a + 1 for a in self._axes(o, x.shape[1:])))


class ChannelShuffle(Layer):
    kind = "channel_shuffle"
    shorthand = "groups"
    category = "shape"
    example = Example({"groups": 2}, [(2, 2, 6)])
    doc = ("Interleaves the channels of `groups` groups (ShuffleNet): channel g·n + i moves "
           "to i·groups + g, so the next grouped convolution mixes the groups.")

    class Options(Options):
        groups: int = Field(description="must divide the channels")

    def out_shape(self, o, shapes, dtypes):
        c = shapes[0][-1]
        if o.groups < 1 or c % o.groups:
            raise ShapeError("groups must divide the channels", expected=f"a divisor of {c}",
                             found=str(o.groups), field="groups")
        return shapes[0]

    def label(self, o, rank, default_activation=None):
        return f"channel_shuffle {o.groups}"

    def build(self, o, xs, *, train, name, defaults):
        x = xs[0]
        c = x.shape[-1]
        y = x.reshape(*x.shape[:-1], o.groups, c // o.groups)
        return y.swapaxes(-1, -2).reshape(x.shape)
