"""Sequence layers without recurrence: multi-head self-attention and positional embeddings.

Both read a (time, features) input and return the same shape. Attention mixes the time
steps (each output is a weighted average of value vectors, the weights a softmax of
query·key / √(key size)); a positional embedding tells it where each step is, since
attention by itself does not see the order.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.layers.base import GLOBAL, Example, InitSpec, Layer, Options, ShapeError
from archspec.layers.init import initializer
from archspec.layers.recurrent import _sequence


class Attention(Layer):
    kind = "attention"
    spatial = True  # every output step sees the whole sequence (or all earlier steps)
    example = Example({"heads": 2, "dim": 6, "causal": True}, [(5, 4)])
    doc = ("Multi-head self-attention over a (time, features) sequence: `heads` heads share "
           "`dim` query/key/value features; softmax(QKᵀ/√(dim/heads))·V per head, then an "
           "output projection back to the input's features. `causal` hides later steps.")

    class Options(Options):
        heads: int = Field(1, description="must divide `dim`")
        dim: int | None = Field(None, description="query/key/value features over all heads; "
                                                  "default: the input's features")
        dropout: float = Field(0.0, ge=0.0, lt=1.0,
                               description="dropout on the attention weights while training")
        causal: bool = Field(False, description="step t attends to steps <= t only")
        bias: bool = True
        init: InitSpec | None = Field(None, description="kernel initialiser; default: Flax's "
                                                        "`lecun_normal`")

    def _dim(self, o, shape):
        return shape[-1] if o.dim is None else o.dim

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        _sequence(shape, self.kind)
        dim = self._dim(o, shape)
        if o.heads < 1:
            raise ShapeError("heads must be positive", found=str(o.heads), field="heads")
        if dim < 1:
            raise ShapeError("dim must be positive", found=str(dim), field="dim")
        if dim % o.heads:
            raise ShapeError(f"dim {dim} does not split into {o.heads} heads",
                             expected=f"a multiple of {o.heads}", found=str(dim),
                             field="dim" if o.dim is not None else "heads",
                             hint="each head gets dim / heads features")
        if not 0.0 <= o.dropout < 1.0:
            raise ShapeError("dropout must be in [0, 1)", found=str(o.dropout), field="dropout")
        return shape

    def params(self, o, shapes, out, defaults):
        f = shapes[0][-1]
        dim = self._dim(o, shapes[0])
        # query, key, value: f -> dim each; output: dim -> f
        return 4 * f * dim + ((3 * dim + f) if o.bias else 0), 0

    def macs(self, o, shapes, out):
        t, f = shapes[0]
        dim = self._dim(o, shapes[0])
        # projections (q, k, v, out) plus the QKᵀ scores and the weighted sum of V
        return 4 * t * f * dim + 2 * t * t * dim

    def window(self, o, shapes):
        return None if o.causal else GLOBAL  # causal: step t reads steps 0..t only

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        x = xs[0]
        kw = {"kernel_init": initializer(o.init, defaults.shapes_only)} if o.init else {}
        mask = nn.make_causal_mask(x[..., 0]) if o.causal else None
        return nn.MultiHeadDotProductAttention(
            num_heads=o.heads, qkv_features=self._dim(o, x.shape[1:]), out_features=x.shape[-1],
            dropout_rate=o.dropout, deterministic=not train or o.dropout == 0.0,
            use_bias=o.bias, dtype=defaults.compute_dtype, name=name, **kw)(x, mask=mask)


class Positional(Layer):
    kind = "positional"
    doc = ("Adds a position code to each step of a (time, features) sequence: a trained "
           "vector per position (`learned`), or the fixed sines and cosines of the "
           "Transformer (`sinusoidal`).")
    example = Example({"max_len": 9}, [(5, 4)])

    class Options(Options):
        mode: Literal["learned", "sinusoidal"] = Field(
            "learned", description="`learned`: a trained vector per position; `sinusoidal`: "
                                   "the Transformer's fixed sin/cos code")
        max_len: int | None = Field(None, description="positions in the learned table (at "
                                                      "least the length); default: the "
                                                      "input's length")
        init: InitSpec | None = Field(None, description="initialiser of the learned table; "
                                                        "default: `{normal: 0.02}`")

    def _len(self, o, shape):
        return shape[0] if o.max_len is None else o.max_len

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        _sequence(shape, self.kind)
        if self._len(o, shape) < shape[0]:
            raise ShapeError(f"max_len {o.max_len} is shorter than the sequence ({shape[0]} "
                             "steps)", expected=f">= {shape[0]}", found=str(o.max_len),
                             field="max_len")
        return shape

    def params(self, o, shapes, out, defaults):
        if o.mode == "sinusoidal":
            return 0, 0
        return self._len(o, shapes[0]) * shapes[0][-1], 0

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn
        import jax.numpy as jnp

        x = xs[0]
        t, f = x.shape[1:]
        if o.mode == "sinusoidal":
            pe = jnp.asarray(sinusoidal(t, f))
        else:  # a table of max_len vectors (param "embedding"), looked up at 0..t-1
            pe = nn.Embed(self._len(o, (t, f)), f, name=name, embedding_init=initializer(
                o.init or {"normal": 0.02}, defaults.shapes_only))(jnp.arange(t))
        return x + pe.astype(x.dtype)[None]


def sinusoidal(length: int, features: int):
    """The Transformer's code: PE[p, 2i] = sin(p / 10000^(2i/f)), PE[p, 2i+1] = cos(same)."""
    import numpy as np

    pos = np.arange(length, dtype=np.float64)[:, None]
    rate = 10000.0 ** (-(np.arange(features) // 2 * 2) / features)
    angle = pos * rate[None, :]
    return np.where(np.arange(features) % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)

