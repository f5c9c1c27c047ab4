"""`${in.…}`: a block reads the shape of its input, so widths and sizes need not be passed
in, and `--input-shape` changes them all. Expected shapes are worked out by hand; the
misuse errors are in tests/corpus/in_*.yaml."""
from __future__ import annotations

from pathlib import Path

import pytest

from archspec.errors import SpecErrors
from archspec.spec.expr import evaluate
from archspec.spec.resolve import load_architecture, load_architecture_text

ARCH = Path(__file__).resolve().parents[2] / "architectures"


def shapes(text: str, input_shape=None) -> dict:
    graph = load_architecture_text(text, "in.yaml", input_shape)
    return {n.id: n.shape for n in graph.layers}


SE = """
name: se_net
input: {shape: [16, 12, 3]}
blocks:
  se:
    params: {squeeze: "${max(1, in.channels // 4)}"}     # defaults see `in` too
    layers:
      - pool: {op: avg, global: true, keepdims: true}
      - conv: {maps: $squeeze, kernel: 1, activation: relu, name: reduce}
      - conv: {maps: "${in.channels}", kernel: 1, activation: sigmoid, name: expand}
      - multiply: {inputs: [_in, expand], name: gate}
layers:
  - conv: {maps: "${in.channels * 8}", kernel: 3, padding: same, name: c1}   # in: the input
  - se
  - conv: {maps: "${in.h + in.w}", kernel: 1, name: c2}                       # still the input
  - se: {inputs: c1, name: again}                                             # in: c1
"""


def test_a_block_reads_its_inputs_channels_and_layers_read_the_architectures_input():
    s = shapes(SE)
    assert s["c1"] == (16, 12, 24)                      # 3 · 8
    assert s["se1.reduce"] == (1, 1, 6)                 # 24 // 4
    assert s["se1.expand"] == (1, 1, 24) and s["se1.gate"] == (16, 12, 24)
    assert s["c2"] == (16, 12, 28)                      # 16 + 12: `in` is the input, not se1
    assert s["again.reduce"] == (1, 1, 6)               # `inputs: c1` is the block's input


def test_input_shape_override_changes_every_width_that_reads_it():
    s = shapes(SE, input_shape=(8, 10, 5))
    assert s["c1"] == (8, 10, 40)
    assert (s["se1.reduce"], s["se1.expand"]) == ((1, 1, 10), (1, 1, 40))
    assert s["c2"] == (8, 10, 18)


def test_the_axes_of_sequences_vectors_and_volumes():
    s = shapes("""
name: ranks
input: {shape: [4, 6, 8, 2]}
blocks:
  probe:
    layers:
      - dense: {units: "${in.d * 100 + in.h * 10 + in.w}", inputs: _in}
      - dense: {units: "${in.shape[0] + in.shape[-1]}", inputs: _in}
      - reshape: {shape: "${in.shape}", inputs: _in}
  seq:
    layers:
      - dense: {units: "${in.length + in.channels}"}
  vec:
    params: {size: "${in.shape[0]}"}
    layers:
      - dense: {units: "${in.channels // 1000 + size % 1000}"}
layers:
  - probe
  - reshape: [-1, 3]
  - seq
  - flatten
  - vec
""")
    assert s["probe1.dense1"] == (4, 6, 8, 468)        # d, h, w = 4, 6, 8
    assert s["probe1.dense2"] == (4, 6, 8, 6)          # 4 + 2
    assert s["probe1.reshape1"] == (4, 6, 8, 2)        # ${in.shape} is a list option
    assert s["reshape1"] == (128, 3)                   # 4·6·8·2 values of the probe's output
    assert s["seq1.dense1"] == (128, 131)              # length 128 + channels 3
    assert s["vec1.dense1"] == (16 + 768,)             # a vector of 16,768: its channels


def test_a_heads_layers_read_the_node_the_head_reads():
    graph = load_architecture_text("""
name: heads
input: {shape: [8, 8, 3]}
layers:
  - conv: {maps: 16, kernel: 3, name: features}
  - pool: {global: true}
  - dense: {units: 2, name: out}
heads:
  main: {from: out}
  aux: {from: features, layers: [conv: {maps: "${in.channels // 2}", kernel: "${in.h}"}]}
""")
    assert graph.nodes["aux.conv1"].shape == (1, 1, 8)  # features: 6×6×16


def test_an_unknown_input_shape_gives_one_error_not_one_per_reader():
    with pytest.raises(SpecErrors) as info:
        load_architecture_text("""
name: cascade
input: {shape: [8, 8, 3]}
blocks:
  wide:
    layers:
      - conv: {maps: "${in.channels * 2}", kernel: 1}
      - conv: {maps: "${in.h}", kernel: 1}
layers:
  - conv: {maps: 4, kernel: 9}
  - wide
""", "cascade.yaml")
    (err,) = info.value.errors                          # the 9×9 kernel on 8×8, only
    assert (err.pos.line, err.message) == (10, "kernel 9 is larger than the padded input 8")


@pytest.mark.parametrize("text,env,value", [
    ("${in}", {"in": 3}, 3),
    ("${2 * in + 1}", {"in": 3}, 7),
    ("${(in)}", {"in": 3}, 3),
    ("${x if in else y}", {"in": 1, "x": 5, "y": 6}, 5),
    ("${'in' + 'side'}", {}, "inside"),                 # a string keeps its text
    ("${inside + min_}", {"inside": 1, "min_": 2}, 3),   # names that contain `in`
    ("conv${in}", {"in": 4}, "conv4"),
])
def test_in_is_a_name_where_an_operand_is_expected(text, env, value):
    assert evaluate(text, env) == value


def test_the_in_operator_stays_refused():
    from archspec.spec.expr import ExprError

    with pytest.raises(ExprError, match="is not allowed"):
        evaluate("${2 in x}", {"x": [1, 2]})
    with pytest.raises(ExprError, match="is not allowed"):
        evaluate("${width.real}", {"width": 3})           # attributes only on `in`


# --- the zoo with another input size --------------------------------------------------------

def test_efficientnet_reads_its_widths_from_its_input_at_any_size():
    graph = load_architecture(ARCH / "efficientnet_b0.yaml", input_shape=(160, 160, 3))
    assert graph.total("params") == 5_288_548           # the widths do not depend on the size
    assert graph.nodes["head_conv.conv"].shape == (5, 5, 1280)     # 160 / 32
    se = graph.nodes["stage2.mbconv1.body1.se.reduce"]  # 16 channels in, squeeze 16 // 4
    assert se.shape == (1, 1, 4)
    assert "stage2.mbconv2.residual1.add" in graph.nodes          # 24 -> 24: identity


def test_vit_summary_at_another_input_size():
    """`archspec summary --input-shape 160,160,3` on ViT-B/16: 10·10 patches + the class
    token. With 196 patches written in the file, this was a reshape error."""
    from typer.testing import CliRunner

    from archspec.cli import app

    result = CliRunner().invoke(app, ["summary", str(ARCH / "vit_b_16.yaml"),
                                      "--input-shape", "160,160,3"],
                                env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines()
                if ln.startswith("trainable parameters"))
    # 86,567,656 at 224² less the position table's rows for 196 - 100 patches
    assert line.split()[-1] == f"{86_567_656 - (196 - 100) * 768:,}"
    graph = load_architecture(ARCH / "vit_b_16.yaml", input_shape=(160, 160, 3))
    assert graph.nodes["tokens"].shape == (101, 768)
