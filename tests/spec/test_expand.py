"""The resolver's stages: the frame that carries the expansion's position, and the macro
registry that sugar keys (`residual`, `branches`) are looked up in."""
from __future__ import annotations

import dataclasses

import pytest

from archspec.errors import SpecErrors
from archspec.spec.frame import Frame, Scope
from archspec.spec.macros import MACROS, macro
from archspec.spec.resolve import load_architecture_text


def test_frame_is_frozen_and_derives_children():
    root = Scope("")
    frame = Frame(root, "input", {"width": 8}, "layers")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.prev = "x"
    rep = frame.at("layers[2]", "input").repetition(1, 3, "conv1")
    assert (rep.path, rep.prev, rep.i, rep.count) == ("layers[2]#1", "conv1", 1, 3)
    assert rep.env == {"width": 8, "i": 1} and frame.env == {"width": 8}
    assert frame.repetition(0, 1, "input").path == "layers"  # a single instance keeps its path
    inner = rep.nested(root.child("stage1"), "conv1", "blocks.stage", calls=("stage",))
    assert (inner.depth, inner.i, inner.count, inner.calls) == (1, 0, 1, ("stage",))
    assert inner.scope.prefix == "stage1." and inner.scope.parent is root


def test_sugar_keys_are_registered_macros():
    assert list(MACROS) == ["residual", "branches"]
    assert MACROS["branches"].shorthand == "paths"
    with pytest.raises(ValueError, match="registered twice"):
        macro("residual")(lambda ex, value, vpos, frame: frame.prev)


ARCH = """
name: m
input: {shape: [8]}
layers:
  - dense: 4
  - twice: {name: pair}
"""


def test_a_new_macro_is_one_decorated_function():
    @macro("twice")
    def twice(ex, value, vpos, frame):
        name = ex.refs.name(frame, value.get("name"), "twice", value, vpos)
        inner = frame.scope.child(name)
        out = ex.synth(inner, "dense", {"units": 4}, vpos, "first", inputs=[frame.prev])
        out = ex.synth(inner, "dense", {"units": 4}, vpos, "second", inputs=[out])
        frame.scope.names[name] = out
        return out

    try:
        graph = load_architecture_text(ARCH)
        assert [n.id for n in graph.layers][-2:] == ["pair.first", "pair.second"]
        assert graph.nodes["pair.second"].params == 4 * 4 + 4
    finally:
        del MACROS["twice"]
    with pytest.raises(SpecErrors, match="unknown layer kind 'twice'"):
        load_architecture_text(ARCH)
