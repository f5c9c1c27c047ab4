"""The head output function (archspec.layers.activation.head_output), the one place a head's
`output:` is applied, against NumPy's formulas (the losses that use it: tests/test_train.py)."""
from __future__ import annotations

import numpy as np
import pytest

from archspec.layers.activation import head_output

RAW = np.array([[-30.0, -1.5, 0.0, 2.0, 40.0], [0.5, 0.25, -0.25, 3.0, -7.0]], np.float32)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("output, want", [
    ("softmax", np_softmax(RAW.astype(np.float64))),
    ("sigmoid", 1 / (1 + np.exp(-RAW.astype(np.float64)))),
    ("softplus", np.logaddexp(0.0, RAW.astype(np.float64))),
    ("linear", RAW),
])
def test_head_output_is_the_formula(output, want):
    got = np.asarray(head_output(output, RAW))
    assert got.dtype == np.float32 and got.shape == RAW.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_linear_keeps_the_values_untouched():
    raw = np.array([1e-8, 3.0], np.float64)
    assert head_output("linear", raw) is raw

