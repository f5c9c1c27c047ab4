"""load_into refuses a file that does not fit, naming every gap at once; skip and strict are
the declared ways to leave layers at their initial values."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import ROOT

SPEC = ROOT / "tests" / "weights" / "specs" / "layout_net.yaml"
MAP = str(ROOT / "tests" / "weights" / "specs" / "layout_net_map.yaml")


def torch_like_state():
    """layout_net's state dict in PyTorch's names and shapes (values: any)."""
    import json

    from archspec.weights import synthetic

    meta = json.loads((ROOT / "tests/weights/fixtures/layout_net.json").read_text())
    return synthetic.state_dict(meta["manifest"], 3)


def load(tensors, tmp_path, spec_text=None, **kw):
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture, load_architecture_text
    from archspec.weights import read
    from archspec.weights.load import load_into

    graph = load_architecture_text(spec_text) if spec_text else load_architecture(SPEC)
    model = build_model(graph)
    x = np.zeros((1, *graph.inputs["input"].shape), np.float32)
    import jax

    variables = model.init(jax.random.key(0), x)
    path = read.write_tensors(tensors, tmp_path / "w.safetensors")
    return variables, load_into(graph, variables, path, map=kw.pop("map", MAP), **kw)


def test_every_gap_in_one_error(tmp_path):
    from archspec.weights.errors import WeightsError

    sd = torch_like_state()
    sd["fc.weight"] = np.zeros((10, 384), np.float32)      # a 10-class head
    sd["fc.bias"] = np.zeros((10,), np.float32)
    del sd["bn1.running_var"]
    sd["head2.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(WeightsError) as err:
        load(sd, tmp_path)
    text = err.value.message
    assert "2 wrong shape, 1 missing, 1 unexpected" in text
    assert ("fc.weight -> params/fc/kernel (384, 5): the spec needs (5, 384) in the file, the "
            "file has (10, 384)") in text
    assert "fc.bias -> params/fc/bias (5): the spec needs (5) in the file, the file has (10)" \
        in text
    assert "missing: bn1.running_var (8) -> batch_stats/bn/var (8)" in text
    assert "unexpected: head2.weight (3, 4): no layer of the spec reads it" in text
    assert err.value.exit_code == 2 and "skip" in err.value.hint


def test_skip_keeps_initial_values_and_counts_them_out(tmp_path):
    sd = torch_like_state()
    sd["fc.weight"] = np.zeros((10, 384), np.float32)
    sd["fc.bias"] = np.zeros((10,), np.float32)
    before, (after, report) = load(sd, tmp_path, skip=["fc"])
    assert np.array_equal(after["params"]["fc"]["kernel"], before["params"]["fc"]["kernel"])
    np.testing.assert_array_equal(after["batch_stats"]["bn"]["var"], sd["bn1.running_var"])
    assert report.skipped == ["fc"] and not report.gaps
    assert (report.tensors, report.tensors_total) == (10, 12)
    assert report.params == 2395 - (384 * 5 + 5)
    assert "(19.6%)" in report.line() and "skipped: fc" in report.line()


def test_not_strict_loads_what_fits_and_lists_the_rest(tmp_path):
    sd = torch_like_state()
    del sd["up.bias"]
    before, (after, report) = load(sd, tmp_path, strict=False)
    assert report.missing == ["up.bias (6) -> params/up/bias (6)"]
    assert np.array_equal(after["params"]["up"]["bias"], before["params"]["up"]["bias"])


def test_a_file_of_another_family_loads_nothing(tmp_path):
    from archspec.weights.errors import WeightsError

    sd = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)}
    with pytest.raises(WeightsError) as err:
        load(sd, tmp_path)
    assert "12 missing, 1 unexpected" in err.value.message


def test_data_parallel_prefix_is_read_through(tmp_path):
    sd = {f"module.{k}": v for k, v in torch_like_state().items()}
    _, (_, report) = load(sd, tmp_path)
    assert report.tensors == report.tensors_total == 12


def test_strided_same_padding_refused_for_torch_weights(tmp_path):
    from archspec.weights.errors import WeightsError

    spec = """
name: same_net
input: {shape: [8, 8, 3]}
layers:
  - conv: {maps: 4, kernel: 3, stride: 2, padding: same, name: c}
  - pool: {op: max, size: 3, stride: 2, padding: same, name: p}
  - flatten
  - dense: {units: 2, name: fc}
"""
    sd = {"c.weight": np.zeros((4, 3, 3, 3), np.float32), "c.bias": np.zeros(4, np.float32)}
    with pytest.raises(WeightsError) as err:
        load(sd, tmp_path, spec_text=spec, map=MAP)
    assert "c (stride 2, pads 0+1, 0+1); p (stride 2, pads 0+1, 0+1)" in err.value.message
    assert "symmetrically" in err.value.hint


def test_own_names_load_without_conversion(tmp_path):
    from archspec.weights.plan import own_key, spec_variables

    before, _ = load(torch_like_state(), tmp_path)
    own = {own_key(t): np.full(s, 0.5, np.float32) for t, s in spec_variables(before).items()}
    _, (after, report) = load(own, tmp_path, map="archspec")
    assert report.map == "archspec" and report.tensors == 12
    assert float(after["params"]["up"]["kernel"][0, 0, 0, 0]) == 0.5


def test_scanned_blocks_are_refused_not_crashed(tmp_path):
    import jax

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture
    from archspec.weights import read
    from archspec.weights.errors import WeightsError
    from archspec.weights.load import load_into

    graph = load_architecture(ROOT / "architectures" / "resnet18.yaml", (32, 32, 3))
    model = build_model(graph, scan_blocks=True)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                  np.zeros((1, 32, 32, 3), np.float32)))
    path = read.write_tensors({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)},
                              tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="scan_blocks is not supported yet"):
        load_into(graph, variables, path)
