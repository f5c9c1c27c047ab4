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


MBCONV = """
name: mb
input: {shape: [8, 8, 4]}
blocks:
  mb:
    params: {maps: 4, stride: 1}
    layers:
      - residual:
          body:
            - conv: {maps: $maps, kernel: 3, stride: $stride, padding: 1, name: conv}
          shortcut: "${'identity' if stride == 1 and in.channels == maps else 'none'}"
          drop_path: "${0.3 * block_index / 3}"
          activation: relu
  stage:
    params: {maps: 4, blocks: 1, stride: 1}
    layers:
      - mb: {maps: $maps, stride: "${stride if i == 0 else 1}", repeat: $blocks}
layers:
  - stage: {maps: 4, blocks: 1}
  - stage: {maps: 8, blocks: 2, stride: 2}
  - stage: {maps: 8, blocks: 1}
"""


def test_shortcut_none_is_the_body_alone_and_block_index_counts_network_wide():
    """MobileNet/EfficientNet blocks skip only where the shape is kept: `shortcut: none`
    (an expression may choose it per instance) leaves the body alone, with no add and no
    drop_path (timm's blocks without a skip). `block_index` numbers a block's instances over
    the whole network, across stages and repeats, for stochastic-depth rates that grow
    with depth (timm's and torchvision's `rate * block_id / total`)."""
    g = load_architecture_text(MBCONV)
    n = g.nodes
    adds = sorted(k for k in n if k.endswith(".add"))
    assert adds == ["stage1.mb1.residual1.add", "stage2.mb2.residual1.add",
                    "stage3.mb1.residual1.add"]  # stage 2's first block changes the shape
    first = "stage2.mb1.residual1"
    assert n[f"{first}.activation"].inputs == [f"{first}.conv"]
    assert not any(k.startswith(f"{first}.drop_path") for k in n)
    rates = {k: n[k].opts.rate for k in n if k.endswith(".drop_path")}
    assert rates == pytest.approx({"stage2.mb2.residual1.drop_path": 0.2,
                                   "stage3.mb1.residual1.drop_path": 0.3})  # 0.3 · 2/3, 3/3
    assert n["stage3.mb1.residual1.add"].inputs[0] == "stage2.mb2.residual1.activation"


def test_an_unknown_shortcut_names_none_among_the_choices():
    with pytest.raises(SpecErrors) as e:
        load_architecture_text(MBCONV.replace("else 'none'", "else 'nothing'"))
    text = str(e.value)
    assert "unknown shortcut 'nothing'" in text and "none" in text
