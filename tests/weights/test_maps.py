"""Name maps are data: patterns with numbered parts, templates with arithmetic."""
from __future__ import annotations

import pytest

from helpers import ROOT


def test_shipped_maps_name_torchvision_modules():
    from archspec.weights.maps import shipped

    maps = shipped()
    assert {"torchvision/resnet", "torchvision/convnext", "torchvision/vit",
            "torchvision/googlenet", "torchvision/efficientnet", "torchvision/alexnet",
            "torchvision/vgg11", "torchvision/vgg16_bn", "torchvision/vgg19"} <= set(maps)
    resnet, convnext = maps["torchvision/resnet"], maps["torchvision/convnext"]
    assert resnet.module("stage3.bottleneck6.residual1.projection_norm") == \
        "layer3.5.downsample.1"
    assert resnet.module("stage1.basic2.residual1.conv2") == "layer1.1.conv2"
    assert resnet.module("avgpool") is None
    # words: GoogLeNet's inception blocks; its fourth branch's conv follows a pool
    googlenet = maps["torchvision/googlenet"]
    assert googlenet.module("inception4e.branches1.path3.conv_bn2.bn") == \
        "inception4e.branch3.1.bn"
    assert googlenet.module("inception3a.branches1.path4.conv_bn1.conv") == \
        "inception3a.branch4.1.conv"
    # stage s's blocks are features.(2s - 1), its downsampling features.(2s - 2)
    assert convnext.module("stage3.block9.residual1.fc2") == "features.5.8.block.5"
    assert convnext.module("stage4.down") == "features.6.1"


def test_every_zoo_spec_a_map_fits_is_named_in_full():
    """Each spec a shipped map says it fits has a name for every layer with variables."""
    from archspec.spec.resolve import load_architecture
    from archspec.weights.maps import shipped

    for m in shipped().values():
        for name in m.fits:
            graph = load_architecture(ROOT / "architectures" / f"{name}.yaml")
            held = [n.id for n in graph.layers if n.params or n.state]
            assert [n for n in held if m.module(n) is None] == [], (m.name, name)


def test_source_picks_the_family_written_for_the_spec():
    from archspec.spec.resolve import load_architecture
    from archspec.weights.errors import WeightsError
    from archspec.weights.maps import resolve_map

    graph = load_architecture(ROOT / "architectures" / "resnet34.yaml", (64, 64, 3))
    assert resolve_map("torchvision", graph, []).name == "torchvision/resnet"
    graph.name = "my_resnet"  # not listed: the one family that names every layer
    assert resolve_map("torchvision", graph, ["conv1", "fc", "stage1.basic1.residual1.bn1"]
                       ).name == "torchvision/resnet"
    with pytest.raises(WeightsError) as err:  # AlexNet's map names conv1, not the others
        resolve_map("torchvision", graph, ["conv1", "conv2", "my_head"])
    assert "(the closest, torchvision/alexnet, names 2 of its 3 layers with weights)" in \
        err.value.message


def test_unknown_map_and_bad_template(tmp_path):
    from archspec.errors import Pos
    from archspec.spec.resolve import load_architecture
    from archspec.weights.errors import WeightsError
    from archspec.weights.maps import read_map, resolve_map

    graph = load_architecture(ROOT / "architectures" / "mlp.yaml")
    with pytest.raises(WeightsError) as err:
        resolve_map("keras", graph, [], Pos("exp.yaml", 4, 3))
    assert "unknown name map 'keras'" in err.value.message
    assert str(err.value.pos) == "exp.yaml:4:3" and "torchvision/resnet" in err.value.hint
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers:\n  block{b}: layer.{b ** 2}\n")
    with pytest.raises(WeightsError, match="cannot compute"):
        read_map(bad).module("block3")
    bad.write_text("fc: fc\n")
    with pytest.raises(WeightsError, match="needs a `layers` table"):
        read_map(bad)
