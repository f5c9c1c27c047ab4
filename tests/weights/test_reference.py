"""PyTorch's own forward is the reference: torchvision's models ran with seeded weights
(tools/make_weight_fixtures.py, which needs torch, committed their logits); here the same
state dict is made again with NumPy, written to a safetensors file, loaded into the zoo
spec through load_into, and archspec's logits must equal torch's to 1e-4 relative. The
suite needs no torch."""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import ROOT

FIXTURES = ROOT / "tests" / "weights" / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def port(name: str, tmp_path, **kw):
    """(graph, model, loaded variables, report) of one fixture's state dict."""
    from archspec.model.build import abstract_variables, build_model
    from archspec.spec.resolve import load_architecture
    from archspec.weights import load, read, synthetic

    meta = fixture(name)
    path = read.write_tensors(synthetic.state_dict(meta["manifest"], meta["seed"]),
                              tmp_path / f"{name}.safetensors")
    graph = load_architecture(ROOT / meta["spec"], tuple(meta["input_shape"]))
    model = build_model(graph)
    variables = abstract_variables(model, graph)
    variables = {c: variables[c] for c in ("params", "batch_stats") if c in variables}
    new, report = load.load_into(graph, variables, path, map=kw.pop("map", meta["map"]), **kw)
    return graph, model, new, report


def logits_error(name: str, tmp_path) -> float:
    from archspec.weights import synthetic

    meta = fixture(name)
    graph, model, variables, report = port(name, tmp_path)
    assert report.tensors == report.tensors_total and not report.gaps
    x = synthetic.inputs(meta["input_nchw"], meta["input_seed"]).transpose(0, 2, 3, 1)
    (head,) = [h for h, v in graph.heads.items() if not v.train_only]  # torch's eval output
    y = model.apply(variables, x, train=False)[head]
    ref = np.load(FIXTURES / f"{name}.npz")["logits"]
    assert np.asarray(y).shape == ref.shape
    return float(np.abs(np.asarray(y) - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("name", ["resnet18", "convnext_tiny", "layout_net", "timm_resnet18",
                                  "timm_convnext_tiny"])
def test_logits_equal_torch(name, tmp_path):
    assert logits_error(name, tmp_path) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "vit_b_16", "efficientnet_b0", "googlenet",
                                  "alexnet", "vgg11_bn", "timm_vit_b_16"])
def test_logits_equal_torch_slow(name, tmp_path):
    assert logits_error(name, tmp_path) <= 1e-4


def test_coverage_line_counts_every_tensor(tmp_path):
    _, _, _, report = port("resnet18", tmp_path)
    # torchvision's ResNet-18: 11,689,512 parameters; 20 BatchNorms of 4,800 channels in all
    assert report.params == report.params_total == 11_689_512
    assert report.state == report.state_total == 2 * 4_800
    assert report.line().startswith("loaded 102/102 tensors from resnet18.safetensors "
                                    "(torchvision/resnet): 11,689,512 of 11,689,512 "
                                    "parameters (100.0%)")


def test_round_trip_gives_torch_state_dict_back(tmp_path):
    """torchvision -> archspec -> torchvision names and layouts: every tensor bit for bit and
    in its own shape, num_batches_tracked included (the grouped transposed conv, the flatten,
    ConvNeXt's (C, 1, 1) layer scale too)."""
    from archspec.weights import load, synthetic

    for name in ("layout_net", "resnet18", "convnext_tiny", "timm_convnext_tiny"):
        meta = fixture(name)
        graph, _, variables, _ = port(name, tmp_path)
        back = load.export_tensors(graph, variables, meta["map"])
        original = synthetic.state_dict(meta["manifest"], meta["seed"])
        assert sorted(back) == sorted(original)
        for k, v in original.items():
            assert back[k].shape == v.shape and back[k].dtype == v.dtype, k
            assert np.array_equal(back[k], v), k


@pytest.mark.slow
def test_timm_vit_round_trip_packs_qkv_back(tmp_path):
    """timm's ViT: `qkv` rows split into query/key/value and packed back bit for bit."""
    from archspec.weights import load, synthetic

    meta = fixture("timm_vit_b_16")
    graph, _, variables, _ = port("timm_vit_b_16", tmp_path)
    back = load.export_tensors(graph, variables, meta["map"])
    original = synthetic.state_dict(meta["manifest"], meta["seed"])
    assert sorted(back) == sorted(original)
    assert all(np.array_equal(back[k], v) for k, v in original.items())
