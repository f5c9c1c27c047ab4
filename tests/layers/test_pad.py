"""The pad layer against NumPy's np.pad: each mode is PyTorch's mode of the same name
(constant: Keras's ZeroPadding, reflect without repeating the edge, replicate the edge,
circular wrapped), and what cannot be padded is refused before anything is built."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from helpers import run_cli
from model.test_build import Net, close, rand

X = rand((2, 5, 6, 3), 11)


@functools.lru_cache(None)
def padded():
    net = Net("""
        name: pads
        input: {shape: [5, 6, 3]}
        layers:
          - pad: {padding: 1, name: zeros}
          - pad: {inputs: input, padding: [[2, 0], [1, 3]], value: -1.5, name: constant}
          - pad: {inputs: input, padding: [4, 2], mode: reflect, name: reflect}
          - pad: {inputs: input, padding: [[0, 6], [3, 3]], mode: replicate, name: replicate}
          - pad: {inputs: input, padding: [[5, 1], [6, 0]], mode: circular, name: circular}
          - conv: {inputs: zeros, maps: 2, kernel: 3, name: conv}
        heads: {out: {from: conv}}
        """, X)
    return net, net.run(X)


@pytest.mark.parametrize("node, pairs, kw", [
    ("zeros", [(1, 1), (1, 1)], {"mode": "constant"}),
    ("constant", [(2, 0), (1, 3)], {"mode": "constant", "constant_values": -1.5}),
    ("reflect", [(4, 4), (2, 2)], {"mode": "reflect"}),
    ("replicate", [(0, 6), (3, 3)], {"mode": "edge"}),
    ("circular", [(5, 1), (6, 0)], {"mode": "wrap"}),
])
def test_each_mode_is_numpys_pad(node, pairs, kw):
    net, outs = padded()
    want = np.pad(X, [(0, 0), *pairs, (0, 0)], **kw)
    close(outs[node], want)
    assert net.graph.nodes[node].shape == want.shape[1:]
    assert net.graph.nodes[node].params == 0 and net.graph.nodes[node].macs == 0


def test_padding_keeps_the_receptive_field_and_a_conv_after_it_sees_the_border():
    net, outs = padded()
    assert net.graph.nodes["zeros"].rf == (1, 1)
    assert net.graph.nodes["conv"].rf == (3, 3) and outs["conv"].shape == (2, 5, 6, 2)


@pytest.mark.parametrize("options, found", [
    ("{padding: -1}", "padding must not be negative"),
    ("{padding: 5, mode: reflect}", "reflect padding of 5 on an axis of 5"),
    ("{padding: 7, mode: circular}", "circular padding of 7 on an axis of 5"),
    ("{padding: 1, mode: reflect, value: 2}", "value pads in mode constant only"),
    ("{padding: [1, 2, 3]}", "padding has 3 values but the input has 2 spatial axes"),
    ("{padding: 1, mode: mirror}", "mirror"),
])
def test_what_cannot_be_padded_is_a_located_error(options, found, tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text(f"name: p\ninput: {{shape: [5, 6, 3]}}\nlayers:\n  - pad: {options}\n")
    done = run_cli("validate", str(spec))
    out = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in out, out
    assert "p.yaml:4" in out and found in out, out
