"""Token inputs: a trained embedding, or a fixed one-hot code."""
from __future__ import annotations

from pydantic import Field

from archspec.layers.base import Example, InitSpec, Layer, Options, ShapeError


def _need_tokens(dtypes, kind):
    if not dtypes[0].startswith("int"):
        raise ShapeError(f"{kind} reads integer token ids", expected="an int32 input",
                         found=f"a {dtypes[0]} input", hint="set `dtype: int32` on the input")


class Embedding(Layer):
    kind = "embedding"
    takes_tokens = True
    token_table = "vocabulary"  # a larger id would read a NaN vector
    doc = "A trained vector of `dimension` numbers per token of a `vocabulary`."
    category = "dense"
    example = Example({"vocabulary": 11, "dimension": 4}, [(6,)], dtype="int32")

    class Options(Options):
        vocabulary: int = Field(description="token ids 0 .. vocabulary - 1")
        dimension: int = Field(description="numbers per token")
        init: InitSpec | None = Field(None, description="default: Flax's (normal, variance 1 / "
                                                        "dimension)")

    def out_shape(self, o, shapes, dtypes):
        _need_tokens(dtypes, self.kind)
        if o.vocabulary < 1 or o.dimension < 1:
            raise ShapeError("vocabulary and dimension must be positive",
                             found=f"{o.vocabulary}, {o.dimension}", field="vocabulary")
        return (*shapes[0], o.dimension)

    def out_dtype(self, o, dtypes):
        return "float32"

    def params(self, o, shapes, out, defaults):
        return o.vocabulary * o.dimension, 0

    def label(self, o, rank, default_activation=None):
        return f"embedding {o.vocabulary}→{o.dimension}"

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn
        from archspec.layers.init import initializer

        kw = {"embedding_init": initializer(o.init, defaults.shapes_only)} if o.init else {}
        return nn.Embed(o.vocabulary, o.dimension, name=name, **kw)(xs[0])


class OneHot(Layer):
    kind = "one_hot"
    takes_tokens = True
    token_table = "classes"  # a larger id would be all zeros
    doc = "Replaces each token id by a vector with a 1 at that id (no parameters)."
    shorthand = "classes"
    category = "shape"
    example = Example({"classes": 5}, [(3,)], dtype="int32")

    class Options(Options):
        classes: int = Field(description="length of each code")

    def out_shape(self, o, shapes, dtypes):
        _need_tokens(dtypes, self.kind)
        if o.classes < 1:
            raise ShapeError("classes must be positive", found=str(o.classes), field="classes")
        return (*shapes[0], o.classes)

    def out_dtype(self, o, dtypes):
        return "float32"

    def label(self, o, rank, default_activation=None):
        return f"one_hot {o.classes}"

    def build(self, o, xs, *, train, name, defaults):
        import jax

        return jax.nn.one_hot(xs[0], o.classes)
