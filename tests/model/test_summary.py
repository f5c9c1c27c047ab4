"""`archspec summary` of a small network whose every number is worked out by hand: the rows
form a tree (header rows total the layers under them, never counted twice), activation rows
name their function, and a training-only head is marked and left out of the inference
figures. A helper row's numbers: conv 3×3 on 8×8 with `same` padding, bias on."""
from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from helpers import run_cli

SPEC = """
name: tree
input: {shape: [8, 8, 3]}
blocks:
  unit:
    params: {m: 4}
    layers:
      - conv: {maps: $m, kernel: 3, padding: same}
      - batchnorm
      - activation: gelu
  pair:
    layers:
      - unit: {m: 4}
      - unit: {m: 6}
layers:
  - pair
  - activation: {elu: {beta: 2}}
  - leaky_relu: {slope: 0.2}
  - relu
  - pool: {op: avg, global: true}
  - dense: {units: 3, activation: linear, name: logits}
heads:
  y: {from: logits, output: softmax}
  side: {from: pair1, layers: [flatten, dense: 2], loss_weight: 0.5, train_only: true}
"""

CONV1 = (9 * 3 * 4 + 4, 8 * 8 * 9 * 3 * 4)       # (params, MACs): 112, 6,912
CONV2 = (9 * 4 * 6 + 6, 8 * 8 * 9 * 4 * 6)       # 222, 13,824
BN1, BN2 = 2 * 4, 2 * 6                          # scale and shift (the same again as state)
LOGITS = (6 * 3 + 3, 6 * 3)                      # after the global pool: 21, 18
SIDE = (8 * 8 * 6 * 2 + 2, 8 * 8 * 6 * 2)        # flatten 384 -> 2: 770, 768


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "tree.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def summary_json(spec_file):
    r = run_cli("summary", spec_file, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_rows_form_a_tree_with_header_totals(summary_json):
    s = summary_json
    rows = {r["name"]: r for r in s["rows"]}
    assert [(r["name"], r["depth"], r["parent"], r["header"]) for r in s["rows"]][:9] == [
        ("pair1", 0, "", True),
        ("pair1.unit1", 1, "pair1", True),
        ("pair1.unit1.conv1", 2, "pair1.unit1", False),
        ("pair1.unit1.batchnorm1", 2, "pair1.unit1", False),
        ("pair1.unit1.activation1", 2, "pair1.unit1", False),
        ("pair1.unit2", 1, "pair1", True),
        ("pair1.unit2.conv1", 2, "pair1.unit2", False),
        ("pair1.unit2.batchnorm1", 2, "pair1.unit2", False),
        ("pair1.unit2.activation1", 2, "pair1.unit2", False)]
    unit1, unit2, pair = rows["pair1.unit1"], rows["pair1.unit2"], rows["pair1"]
    assert (unit1["params"], unit1["state"], unit1["macs"]) == (CONV1[0] + BN1, BN1, CONV1[1])
    assert (unit2["params"], unit2["state"], unit2["macs"]) == (CONV2[0] + BN2, BN2, CONV2[1])
    assert (pair["params"], pair["macs"], pair["children"]) == (354, 20_736, 6)
    assert pair["shape"] == [8, 8, 6] and unit1["shape"] == [8, 8, 4]   # the blocks' outputs
    side = rows["side"]
    assert (side["kind"], side["header"], side["train_only"]) == ("head", True, True)
    assert (side["params"], side["macs"]) == SIDE
    assert rows["side.dense1"]["parent"] == "side" and rows["side.dense1"]["train_only"]
    # the totals count each layer once: the sum over the rows that are not headers
    leaves = [r for r in s["rows"] if not r["header"]]
    trainable = CONV1[0] + BN1 + CONV2[0] + BN2 + LOGITS[0] + SIDE[0]
    assert s["trainable"] == sum(r["params"] for r in leaves) == trainable == 1_145
    assert s["macs"] == sum(r["macs"] for r in leaves) == CONV1[1] + CONV2[1] + LOGITS[1] + SIDE[1]
    assert s["state"] == BN1 + BN2


def test_activation_rows_name_their_function(summary_json):
    rows = {r["name"]: r for r in summary_json["rows"]}
    assert rows["pair1.unit1.activation1"]["kind"] == "activation"   # the kind is unchanged
    assert {n: rows[n]["function"] for n in ("pair1.unit1.activation1", "activation1",
                                             "leaky_relu1", "relu1", "logits")} == {
        "pair1.unit1.activation1": "gelu", "activation1": "elu(beta=2)",
        "leaky_relu1": "leaky_relu(slope=0.2)", "relu1": "relu", "logits": None}


def test_training_only_head_is_left_out_at_inference(summary_json):
    s = summary_json
    assert s["heads"]["side"]["train_only"] and not s["heads"]["y"]["train_only"]
    assert s["inference_params"] == s["trainable"] - SIDE[0] == 375
    assert s["inference_macs"] == s["macs"] - SIDE[1] == 20_754


@pytest.fixture(scope="module")
def graph(spec_file):
    from archspec.spec.resolve import load_architecture

    return load_architecture(spec_file)


def text_of(renderable) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, highlight=False)
    console.print(renderable)
    return console.export_text()


def test_table_marks_headers_activations_and_the_training_only_head(graph):
    from archspec.model.summary import summarize
    from archspec.ui.summary import summary_table, summary_totals

    s = summarize(graph)
    text = text_of(summary_table(s))
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in text.splitlines()
             if ln.startswith("│")]
    by: dict = {}
    for c in cells:
        by.setdefault(c[0], c)                                   # the first row of a name
    assert by["pair1"][1:5] == ["block", "8×8×6", "Σ 354", "Σ 20"]
    assert by["unit1"][3:6] == ["Σ 120", "Σ 8", "Σ 6.91 k"]
    assert by["conv1"][3] == "112"                           # a leaf: a plain number
    assert by["leaky_relu1"][1] == "leaky_relu(slope=0.2)" and by["relu1"][1] == "relu"
    assert [c[1] for c in cells if c[0] == "activation1"] == ["gelu", "gelu", "elu(beta=2)"]
    assert by["side"][1:4] == ["head, training only", "2", "Σ 770"]
    assert "Σ: a block's totals over the rows under it" in text
    totals = text_of(summary_totals(s))
    assert "375  (without side)" in totals and "20,754  (20.75 k, without side)" in totals
    assert "21,522  (21.52 k multiply-accumulates per example in training)" in totals
    assert "head side" in totals and "loss weight 0.5, training only" in totals


def test_folded_views_keep_the_tree_and_the_totals(graph):
    from archspec.model.summary import summarize

    d0, d1 = summarize(graph, 0), summarize(graph, 1)
    assert [(r.name, r.kind, r.header, r.children) for r in d0.rows] == [
        ("pair1", "block", False, 6), ("activation1", "activation", False, 0),
        ("leaky_relu1", "leaky_relu", False, 0), ("relu1", "relu", False, 0),
        ("pool1", "pool", False, 0), ("logits", "dense", False, 0), ("side", "head", False, 2)]
    assert [(r.name, r.header, r.parent) for r in d1.rows[:3]] == [
        ("pair1", True, ""), ("pair1.unit1", False, "pair1"), ("pair1.unit2", False, "pair1")]
    for s in (d0, d1):
        assert sum(r.params for r in s.leaves) == s.trainable == 1_145
        assert sum(r.macs for r in s.leaves) == s.macs
    assert d0.rows[-1].train_only and d0.inference_macs == 20_754


def test_every_head_training_only_is_refused(tmp_path):
    from archspec.errors import SpecErrors
    from archspec.spec.resolve import load_architecture

    lines = SPEC.splitlines()
    y, side = (next(i + 1 for i, ln in enumerate(lines) if ln.startswith(f"  {h}:"))
               for h in ("y", "side"))
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.replace("y: {from: logits, output: softmax}",
                                 "y: {from: logits, output: softmax, train_only: true}"))
    with pytest.raises(SpecErrors) as exc:
        load_architecture(path)
    (err,) = exc.value.errors
    assert "every head is `train_only`" in err.message and err.pos.line == y
    path.write_text(SPEC.replace("train_only: true", "train_only: 1"))
    with pytest.raises(SpecErrors) as exc:
        load_architecture(path)
    (err,) = exc.value.errors
    assert "train_only" in err.message and err.pos.line == side
