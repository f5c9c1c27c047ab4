"""Recurrent layers over a (time, features) input: LSTM and GRU, Flax's cells run by nn.RNN.

The parameter layout is Flax's: input kernels `ii if ig io` (LSTM) or `ir iz in` (GRU) and
recurrent kernels `hi hf hg ho` / `hr hz hn`, each `(in, units)` or `(units, units)`. The
LSTM keeps its biases on the recurrent side (`hi`...), the GRU on the input side plus `hn`
(the candidate's recurrent term is gated by r, so it needs its own bias). The state starts
at zero for every sequence.
"""
from __future__ import annotations

from archspec.fmt import fmt_shape
from pydantic import Field

from archspec.layers.base import Example, InitSpec, Layer, Options, ShapeError
from archspec.layers.init import initializer


def _sequence(shape, kind):
    if len(shape) != 2:
        raise ShapeError(f"{kind} reads a sequence of feature vectors",
                         expected="(time, features)", found=fmt_shape(shape),
                         hint="token ids need an `embedding` first; a feature map can be "
                              "`reshape`d to (time, features)")


class _Recurrent(Layer):
    gates: int  # weight matrices per input and per state: 4 (LSTM) or 3 (GRU)
    spatial = True  # each output step sees the whole input so far: no finite window
    example = Example({"units": 3, "return_sequences": True, "bias": False}, [(5, 2)])

    class Options(Options):
        units: int = Field(description="size of the state and of each output")
        return_sequences: bool = Field(False, description="`false`: the last step's output; "
                                                          "`true`: every step's")
        bias: bool = True
        init: InitSpec | None = Field(None, description="initialiser of the input kernels; the "
                                                        "recurrent ones are orthogonal; "
                                                        "default: Flax's `lecun_normal`")

    def out_shape(self, o, shapes, dtypes):
        (shape,) = shapes
        _sequence(shape, self.kind)
        if o.units < 1:
            raise ShapeError("units must be positive", expected=">= 1", found=str(o.units),
                             field="units")
        return (shape[0], o.units) if o.return_sequences else (o.units,)

    def params(self, o, shapes, out, defaults):
        f, u = shapes[0][-1], o.units
        return self.gates * (f * u + u * u) + (self.bias_count(u) if o.bias else 0), 0

    def macs(self, o, shapes, out):
        t, f = shapes[0]
        return t * self.gates * (f * o.units + o.units * o.units)

    def window(self, o, shapes):
        return None

    def build(self, o, xs, *, train, name, defaults):
        import flax.linen as nn

        kw = {"kernel_init": initializer(o.init, defaults.shapes_only)} if o.init else {}
        # parent=None: the cell belongs to the RNN (params under <name>.cell), not the model
        cell = self.cell(o.bias)(o.units, dtype=defaults.compute_dtype, parent=None, **kw)
        y = nn.RNN(cell, name=name)(xs[0])
        return y if o.return_sequences else y[:, -1]


class LSTM(_Recurrent):
    kind = "lstm"
    gates = 4
    doc = ("Long short-term memory over a (time, features) sequence: `units` cells with "
           "input, forget and output gates; the last step's output, or every step's with "
           "`return_sequences`.")

    @staticmethod
    def bias_count(u):
        return 4 * u

    @staticmethod
    def cell(bias: bool):
        import flax.linen as nn
        return nn.OptimizedLSTMCell if bias else _lstm_without_bias()


class GRU(_Recurrent):
    kind = "gru"
    gates = 3
    doc = ("Gated recurrent unit over a (time, features) sequence: `units` cells with reset "
           "and update gates; the last step's output, or every step's with `return_sequences`.")

    @staticmethod
    def bias_count(u):
        return 4 * u  # ir, iz, in and hn

    @staticmethod
    def cell(bias: bool):
        import flax.linen as nn
        return nn.GRUCell if bias else _gru_without_bias()


_CELLS: dict = {}


def _lstm_without_bias():
    """Flax's LSTMCell has no switch for its biases; this one is the same cell without them."""
    if "lstm" not in _CELLS:
        import flax.linen as nn

        class LSTMCellNoBias(nn.LSTMCell):
            @nn.compact
            def __call__(self, carry, inputs):
                c, h = carry
                di, dh = _bias_free_denses(self, h.shape[-1])
                i = self.gate_fn(di(name="ii")(inputs) + dh(name="hi")(h))
                f = self.gate_fn(di(name="if")(inputs) + dh(name="hf")(h))
                g = self.activation_fn(di(name="ig")(inputs) + dh(name="hg")(h))
                o = self.gate_fn(di(name="io")(inputs) + dh(name="ho")(h))
                new_c = f * c + i * g
                new_h = o * self.activation_fn(new_c)
                return (new_c, new_h), new_h

        _CELLS["lstm"] = LSTMCellNoBias
    return _CELLS["lstm"]


def _bias_free_denses(cell, units: int):
    """Input and hidden projections of a gate, without bias, with the cell's initialisers."""
    from functools import partial

    import flax.linen as nn

    dense = partial(nn.Dense, features=units, use_bias=False, dtype=cell.dtype,
                    param_dtype=cell.param_dtype)
    return (partial(dense, kernel_init=cell.kernel_init),
            partial(dense, kernel_init=cell.recurrent_kernel_init))


def _gru_without_bias():
    """Flax's GRUCell without its biases (same parameter names)."""
    if "gru" not in _CELLS:
        import flax.linen as nn

        class GRUCellNoBias(nn.GRUCell):
            @nn.compact
            def __call__(self, carry, inputs):
                h = carry
                di, dh = _bias_free_denses(self, h.shape[-1])
                r = self.gate_fn(di(name="ir")(inputs) + dh(name="hr")(h))
                z = self.gate_fn(di(name="iz")(inputs) + dh(name="hz")(h))
                n = self.activation_fn(di(name="in")(inputs) + r * dh(name="hn")(h))
                new_h = (1.0 - z) * n + z * h
                return new_h, new_h

        _CELLS["gru"] = GRUCellNoBias
    return _CELLS["gru"]
