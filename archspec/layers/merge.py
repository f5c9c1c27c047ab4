"""Merges of several nodes: add (residual), concat (Inception, DenseNet), multiply."""
from __future__ import annotations

from archspec.fmt import fmt_shape
from pydantic import Field

from archspec.layers.base import Example, Layer, Options, ShapeError


def broadcast(shapes) -> tuple | None:
    """NumPy's broadcast of the shapes (without batch), or None where they do not broadcast."""
    rank = max(len(s) for s in shapes)
    out = []
    for sizes in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            return None
        out.append(big.pop() if big else 1)
    return tuple(out)


class Add(Layer):
    kind = "add"
    n_inputs = None
    doc = ("Element-wise sum (a residual connection). Shapes broadcast as in NumPy: a "
           "1×1×C input adds one value per channel.")
    category = "merge"
    example = Example({}, [(4, 4, 3), (4, 4, 3), (1, 1, 3)])

    def out_shape(self, o, shapes, dtypes):
        out = broadcast(shapes)
        if out is None:
            first = next(s for s in shapes[1:] if broadcast([shapes[0], s]) is None)
            raise ShapeError(f"{self.kind} needs inputs of one shape, or shapes that broadcast",
                             expected=fmt_shape(shapes[0]), found=fmt_shape(first),
                             hint=self.hint(shapes[0], first), field="inputs")
        return out

    def hint(self, a, b) -> str | None:
        """A residual that changed resolution or width needs a projection shortcut."""
        if len(a) != len(b) or len(a) < 2:
            return None
        ratio = [x // y for x, y in zip(b[:-1], a[:-1]) if y and x % y == 0]
        stride = max(ratio + [x // y for x, y in zip(a[:-1], b[:-1]) if y and x % y == 0]
                     or [1])
        return ("add a 1×1 projection shortcut" + (f" with stride {stride}" if stride > 1 else "")
                + f" and {max(a[-1], b[-1])} maps (residual: {{shortcut: projection}})")

    def build(self, o, xs, *, train, name, defaults):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(Add):
    kind = "multiply"
    doc = ("Element-wise product (gating). Shapes broadcast as in NumPy: a 1×1×C gate scales "
           "each channel of an H×W×C map (squeeze-and-excitation).")

    def hint(self, a, b) -> str | None:
        if len(a) == len(b) and len(a) >= 2:
            return (f"a per-channel gate has shape {fmt_shape((1,) * (len(a) - 1) + (a[-1],))}"
                    ": pool with `global: true, keepdims: true` and give its last layer "
                    f"{a[-1]} outputs")
        return None

    def build(self, o, xs, *, train, name, defaults):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(Layer):
    kind = "concat"
    takes_tokens = True  # of token inputs only (checked in spec.infer)
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
