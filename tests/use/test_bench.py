"""`archspec bench`: the fields are there and consistent with each other. No timing
thresholds: speed is measured in benchmarks/, tests only check what is reported."""
from __future__ import annotations

import json
import os

import pytest

from archspec import hugepages

from helpers import run_cli

TINY = """
name: tiny
input: {shape: [8, 8, 1]}
defaults: {activation: relu}
layers:
  - conv: {maps: 4, kernel: 3, padding: same}
  - pool: {op: max, size: 2}
  - flatten
  - dense: {units: 3, activation: linear, name: logits}
heads:
  y: {from: logits, output: softmax}
"""
MACS = 8 * 8 * 4 * 9 + 4 * 4 * 4 * 3  # conv + dense, per example

FIELDS = ("compile_s", "step_s", "examples_per_s", "train_flops_per_step", "achieved_flops",
          "peak_matmul_flops", "utilisation", "peak_memory_bytes", "memory_source")


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    p = tmp_path_factory.mktemp("bench") / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def result(spec):
    proc = run_cli("bench", spec, "--batch", 4, "--steps", 2, "--matmul-size", 128, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_json_fields(result):
    for f in FIELDS:
        assert f in result, f
    assert result["name"] == "tiny" and result["batch"] == 4 and result["steps"] == 2
    assert result["precision"] == "float32"
    assert result["params"] == 4 * 9 + 4 + 64 * 3 + 3


def test_json_values_consistent(result):
    assert result["compile_s"] > 0
    assert 0 < result["step_s_min"] <= result["step_s"] <= result["step_s_max"]
    assert result["examples_per_s"] == pytest.approx(4 / result["step_s"])
    assert result["forward_macs_per_example"] == MACS
    assert result["train_flops_per_step"] == 3 * 2 * MACS * 4  # the documented estimate
    assert result["achieved_flops"] == pytest.approx(result["train_flops_per_step"]
                                                     / result["step_s"])
    assert result["peak_matmul_flops"] > 0
    assert result["utilisation"] == pytest.approx(result["achieved_flops"]
                                                  / result["peak_matmul_flops"])
    assert result["peak_memory_bytes"] > 1 << 20  # at least a MiB: a Python process with JAX
    assert result["memory_source"] in ("device", "process RSS")
    assert result["step_memory_bytes"] is None or result["step_memory_bytes"] > 0
    assert "3 x forward MACs" in result["flops_note"]


def test_the_command_gives_itself_huge_pages(result):
    """The command re-executes itself with glibc's huge-page tunable where that helps
    (archspec/hugepages.py), and says what its process has."""
    wanted = hugepages.command_env({}) is not None
    if wanted and not os.environ.get(hugepages.ENV) and "GLIBC_TUNABLES" not in os.environ:
        assert result["memory_pages"].startswith("huge pages for malloc's mappings"), result
    else:
        assert result["memory_pages"], result


def test_table_output_bf16(spec):
    proc = run_cli("bench", spec, "--batch", 2, "--steps", 2, "--matmul-size", 64,
                   "--precision", "bf16")
    assert proc.returncode == 0, proc.stderr
    for label in ("compile time", "step time (median)", "examples/s", "achieved",
                  "matmul peak (measured)", "utilisation", "peak memory", "bf16"):
        assert label in proc.stdout, label


@pytest.mark.parametrize("args", [("--precision", "fp16"), ("--steps", "0"), ("--batch", "0")])
def test_bad_options(spec, args):
    proc = run_cli("bench", spec, *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


PER_PIXEL = """
name: seg
input: {shape: [8, 8, 1]}
layers:
  - conv: {maps: 4, kernel: 3, padding: same, activation: relu}
  - conv: {maps: 3, kernel: 1, activation: linear, name: out}
heads:
  mask: {from: out, output: softmax}
"""


def test_a_per_pixel_head_is_benched_with_a_class_per_position(tmp_path):
    """Before: `archspec bench architectures/unet.yaml` stopped with "axis 3 is out of
    bounds": its random targets were one class per image for a head with one per pixel."""
    from archspec.spec.resolve import load_architecture_text
    from archspec.use.bench import _random_batch, bench

    graph = load_architecture_text(PER_PIXEL)
    x, y, heads = _random_batch(graph, 2)
    assert x.shape == (2, 8, 8, 1) and y.shape == (2, 8, 8) and y.max() < 3
    assert [h.head for h in heads] == ["mask"]
    spec = tmp_path / "seg.yaml"
    spec.write_text(PER_PIXEL)
    result = bench(spec, batch=2, steps=1, warmup=0, matmul_size=64)
    assert result.step_s > 0
