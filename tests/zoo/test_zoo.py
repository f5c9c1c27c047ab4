"""The architecture zoo: every file in architectures/ resolves, builds (jax.eval_shape only,
nothing allocated) and reproduces the published figures of the papers and torchvision exactly.
A few networks that are not in the zoo (tests/specs/) show the language expresses them without
new layer kinds; their counts are checked against hand calculations."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.spec.resolve import load_architecture, load_architecture_text
from archspec.model.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "architectures"
SPECS = ROOT / "tests" / "specs"
FILES = sorted(p.stem for p in ARCH.glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schema/architecture.schema.json"

# Trainable parameters: reference.md (torchvision's num_params and the papers), plus the counts
# of the other zoo files, each derived in the file's header comment.
PARAMS = {
    "mlp": 62,
    "logistic_regression": 650,
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg11_lrn": 132_863_336,   # LRN has no parameters
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg16_c": 133_638_952,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet18_cifar": 11_173_962,   # kuangliu/pytorch-cifar ResNet18
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "googlenet_noaux": 6_624_904,
    "googlenet": 13_004_888,
    "efficientnet_b0": 5_288_548,   # torchvision; the same for the three below
    "convnext_tiny": 28_589_128,
    "vit_b_16": 86_567_656,
    "unet": 31_030_658,          # derived by hand in tests/zoo/test_unet.py
    "mnist1d_cnn": 5_210,        # the MNIST-1D paper's ConvBase (PyTorch count of its layers)
    "fashion_cnn": 824_810,      # derived in the file's header
}


@functools.lru_cache(maxsize=None)
def built(path: str):
    """(graph, per-node summary) of one file, built once per test session."""
    graph = load_architecture(path)
    return graph, summarize(graph)


def zoo(name: str):
    return built(str(ARCH / f"{name}.yaml"))


def spec(name: str):
    return built(str(SPECS / f"{name}.yaml"))


def params_under(graph, prefix: str) -> int:
    """Trainable parameters of every node under a dotted prefix (a block instance)."""
    return sum(n.params for n in graph.layers if n.id.startswith(prefix))


def cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("archspec")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "archspec"]
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)


# --- every file --------------------------------------------------------------------------

def test_zoo_is_complete():
    expected = set(PARAMS) | {"lenet_digits", "alexnet_lrn", "zfnet"}
    assert expected <= set(FILES), sorted(expected - set(FILES))


@pytest.mark.parametrize("name", FILES)
def test_file_header(name):
    lines = (ARCH / f"{name}.yaml").read_text().splitlines()
    assert lines[0] == SCHEMA_LINE
    assert lines[1].startswith("# ") and len(lines[1]) > 20, "second line: what it is, its source"
    graph, _ = zoo(name)
    assert graph.name == name


@pytest.mark.parametrize("name", FILES)
def test_resolver_counts_equal_flax(name):
    """The resolver's own count of every node equals the real Flax variables, and so do its
    shapes (summarize asserts those)."""
    graph, s = zoo(name)
    assert len(s.leaves) == len(graph.layers)
    for row in s.leaves:
        node = graph.nodes[row.name]
        assert (node.params, node.state) == (row.params, row.state), row.name
    assert s.trainable == graph.total("params")
    assert s.state == graph.total("state")
    assert s.macs == graph.total("macs")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_published_parameter_count(name):
    _, s = zoo(name)
    assert s.trainable == PARAMS[name]


def test_published_macs():
    assert round(zoo("vgg16")[1].macs / 1e9, 2) == 15.47
    assert round(zoo("resnet50")[1].macs / 1e9, 3) == 4.089
    # torchvision's GFLOPS figures, which count multiply-accumulates
    assert round(zoo("efficientnet_b0")[1].macs / 1e9, 2) == 0.39
    assert round(zoo("convnext_tiny")[1].macs / 1e9, 2) == 4.46
    assert round(zoo("vit_b_16")[1].macs / 1e9, 2) == 17.56


def test_mlp_hand_calculation():
    inputs, hidden, outputs = 3, 10, 2
    weights = inputs * hidden + hidden * outputs      # two matrices: they add, not multiply
    biases = hidden + outputs
    assert weights + biases == 62
    assert inputs * hidden * outputs + hidden + outputs == 72   # the common slip
    graph, s = zoo("mlp")
    assert s.trainable == weights + biases
    assert [graph.nodes[n].params for n in ("hidden", "out")] == [3 * 10 + 10, 10 * 2 + 2]


def test_bn_variants_add_scale_and_shift_per_conv_map():
    for bn, plain, convs in (("vgg11_bn", "vgg11", [64, 128, 256, 256, 512, 512, 512, 512]),
                             ("vgg16_bn", "vgg16", [64] * 2 + [128] * 2 + [256] * 3
                              + [512] * 6)):
        extra = 2 * sum(convs)
        assert zoo(bn)[1].trainable == zoo(plain)[1].trainable + extra
        assert zoo(bn)[1].state == extra          # running mean and variance
        assert zoo(bn)[1].macs == zoo(plain)[1].macs


def test_googlenet_auxiliary_heads():
    graph, s = zoo("googlenet")
    aux = {name: params_under(graph, name + ".") for name in ("aux1", "aux2")}
    # pool 4×4 -> 1×1 conv 128 (no bias) + BN -> dense 2048·1024 -> dense 1024·1000
    assert aux == {"aux1": 512 * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000,
                   "aux2": 528 * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000}
    assert s.trainable - sum(aux.values()) == PARAMS["googlenet_noaux"]
    heads = graph.heads
    assert (heads["aux1"].loss_weight, heads["aux2"].loss_weight) == (0.3, 0.3)
    assert heads["classes"].loss_weight == 1.0
    assert {h.output for h in heads.values()} == {"softmax"}
    assert all(h.shape == (1000,) for h in heads.values())
    assert graph.nodes[graph.heads["aux1"].node].id.startswith("aux1.")
    assert round(zoo("googlenet_noaux")[1].macs / 1e9, 1) == 1.5   # torchvision: 1.50
    # the auxiliary heads are training only: inference leaves out their layers and nothing else
    assert [h.train_only for h in heads.values()] == [False, True, True]
    noaux = zoo("googlenet_noaux")[1]
    assert (s.inference_params, s.inference_macs) == (noaux.trainable, noaux.macs)
    assert s.inference_macs == 1_498_376_192 and f"{s.inference_macs / 1e9:.2f}" == "1.50"
    aux_macs = {"aux1": 512 * 128 * 16 + 2048 * 1024 + 1024 * 1000,   # conv at 4×4, two dense
                "aux2": 528 * 128 * 16 + 2048 * 1024 + 1024 * 1000}
    assert s.macs == s.inference_macs + sum(aux_macs.values()) == 1_506_748_416
    assert {r.name: r.macs for r in s.rows if r.kind == "head"} == aux_macs
    assert {r.name for r in s.rows if r.train_only and r.depth == 0} == {"aux1", "aux2"}
    assert all(r.train_only == r.name.startswith(("aux1", "aux2")) for r in s.rows)


def test_summary_rows_form_a_tree():
    """At full depth each block instance has a header row before its layers, totalling them:
    resnet50's 17 `conv1`s each sit under their own bottleneck."""
    _, s = zoo("resnet50")
    by = {r.name: r for r in s.rows}
    headers = [r for r in s.rows if r.header]
    for h in headers:  # a header totals exactly the layers whose path it prefixes
        under = [r for r in s.leaves if r.name.startswith(h.name + ".")]
        assert (h.params, h.state, h.macs, h.children) == (
            sum(r.params for r in under), sum(r.state for r in under),
            sum(r.macs for r in under), len(under)), h.name
        assert h.shape == under[-1].shape
    for i, r in enumerate(s.rows):  # every row follows its parent, one level deeper
        if r.parent:
            assert s.rows.index(by[r.parent]) < i and by[r.parent].depth == r.depth - 1
    assert sum(r.params for r in s.leaves) == s.trainable == PARAMS["resnet50"]
    assert sum(r.macs for r in s.leaves) == s.macs
    conv1 = [r for r in s.leaves if r.name.endswith(".conv1")]
    assert len(conv1) == 16 and len({r.parent for r in conv1}) == 16   # + the stem's conv1
    block = by["stage2.bottleneck1"]
    # 1×1 256→128, 3×3 128→128 (stride 2), 1×1 128→512, projection 256→512; BN 2 per map
    assert block.params == (256 * 128 + 9 * 128 * 128 + 128 * 512 + 256 * 512
                            + 2 * (128 + 128 + 512 + 512)) == 379_392
    assert block.macs == (56 * 56 * 256 * 128 + 28 * 28 * (9 * 128 * 128 + 128 * 512
                                                           + 256 * 512)) == 372_506_624
    assert (block.shape, block.parent, block.depth) == ((28, 28, 512), "stage2", 1)
    assert by["stage2.bottleneck1.residual1.activation"].function == "relu"


# --- feature-map sizes from the papers ------------------------------------------------------

def test_zfnet_feature_maps():
    graph, _ = zoo("zfnet")
    sizes = {n: graph.nodes[n].shape for n in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")}
    assert sizes == {"conv1": (110, 110, 96), "pool1": (55, 55, 96), "conv2": (26, 26, 256),
                     "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
                     "conv5": (13, 13, 256), "pool5": (6, 6, 256)}
    assert [graph.nodes[n].shape for n in ("fc6", "fc7", "fc8")] == [(4096,), (4096,), (1000,)]


@pytest.mark.parametrize("depth,blocks,expansion", [
    (18, [2, 2, 2, 2], 1), (34, [3, 4, 6, 3], 1), (50, [3, 4, 6, 3], 4),
    (101, [3, 4, 23, 3], 4), (152, [3, 8, 36, 3], 4)])
def test_resnet_feature_maps(depth, blocks, expansion):
    graph, _ = zoo(f"resnet{depth}")
    assert graph.nodes["conv1"].shape == (112, 112, 64)
    assert graph.nodes["maxpool"].shape == (56, 56, 64)
    kind = "bottleneck" if expansion == 4 else "basic"
    for k, (size, maps, n) in enumerate(zip((56, 28, 14, 7), (64, 128, 256, 512), blocks), 1):
        ids = [i for i in graph.nodes if i.startswith(f"stage{k}.")]
        assert graph.nodes[ids[-1]].shape == (size, size, maps * expansion)
        instances = {i.split(".")[1] for i in ids}
        assert instances == {f"{kind}{b}" for b in range(1, n + 1)}
    assert graph.nodes["fc"].shape == (1000,)


def test_resnet50_is_v1_5_with_projection_shortcuts():
    graph, _ = zoo("resnet50")
    block = "stage2.bottleneck1.residual1."
    conv1, conv2 = graph.nodes[block + "conv1"].opts, graph.nodes[block + "conv2"].opts
    assert (conv1.stride, conv2.stride) == (1, 2)            # v1.5: stride on the 3×3
    proj = graph.nodes[block + "projection"]
    assert proj.params == 256 * 512 and proj.shape == (28, 28, 512)      # 1×1, no bias
    assert graph.nodes[block + "projection_norm"].kind == "batchnorm"
    assert not any(i.startswith("stage2.bottleneck2.") and i.endswith("projection")
                   for i in graph.nodes)                     # identity when shapes match


# --- the command line ---------------------------------------------------------------------

def test_validate_every_file():
    result = cli("validate", *[f"architectures/{n}.yaml" for n in FILES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout + result.stderr


@pytest.mark.parametrize("name,args,total", [
    ("mlp", [], "62"),
    ("resnet152", ["--depth", "1"], "60,192,808")])
def test_summary_command(name, args, total):
    result = cli("summary", str(ARCH / f"{name}.yaml"), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("trainable parameters"))
    assert line.split()[-1] == total


def test_summary_command_shows_the_tree_and_training_only_heads():
    """googlenet at full depth: header rows (Σ totals) before their layers, the auxiliary
    heads marked, MACs in training and at inference (torchvision's 1.50 G)."""
    result = cli("summary", "architectures/googlenet.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    table = [ln.split("│")[1:-1] for ln in lines if ln.startswith("│")]
    names = [c[0][1:].rstrip() for c in table]                    # indented
    cells = [[c.strip() for c in row] for row in table]
    at = names.index("inception3a")
    assert names[at:at + 5] == ["inception3a", "  branches1", "    path1", "      conv_bn1",
                                "        conv"]
    assert cells[at][1] == "block" and cells[at][3] == "Σ 155,872"
    assert cells[at + 4][1:4] == ["conv", "28×28×64", "12,288"]      # a leaf: no Σ
    aux = [c for c in cells if c[0] in ("aux1", "aux2")]
    assert [c[1] for c in aux] == ["head, training only", "block"] * 2   # aux1 reads block aux
    assert [c[1] for c in cells if c[0] == "relu1"] == ["relu"] * (3 + 9 * 6 + 2)  # every conv_bn
    totals = {ln[:22].strip(): ln[22:].split() for ln in lines if not ln.startswith(("│", "┃"))}
    assert totals["trainable parameters"][0] == "13,004,888"
    assert "1,506,748,416" in totals["MACs"] and "training)" in totals["MACs"]
    inference = [ln.split() for ln in lines if ln.startswith("  at inference")]
    assert inference[0][2:4] == ["6,624,904", "(without"]
    assert inference[1][2:4] == ["1,498,376,192", "(1.50"]
    assert "head aux1" in result.stdout and result.stdout.count("training only") == 4


def test_schema_file_lists_every_kind():
    """schema/architecture.schema.json is generated (`archspec schema -o ...`); it must know
    every layer kind and option of the running code."""
    from archspec.spec.jsonschema import schema_for

    path = ROOT / "schema" / "architecture.schema.json"
    assert path.exists(), "generate it: archspec schema -o schema/architecture.schema.json"

    def kinds(schema):
        out = {}
        for item in schema["$defs"]["Layer"]["anyOf"]:
            for kind, body in item.get("properties", {}).items():
                opts = next(b for b in body["anyOf"] if b.get("type") == "object")
                out[kind] = sorted(opts["properties"])
        return out

    assert kinds(json.loads(path.read_text())) == kinds(schema_for("architecture")), \
        "stale schema: run archspec schema -o schema/architecture.schema.json"


def test_spec_reference_examples_resolve():
    """Every complete example (a YAML block with `name:`) in docs/spec.md is valid."""
    import re

    text = (ROOT / "docs" / "spec.md").read_text()
    examples = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S)
                if re.search(r"^name:", b, re.M)]
    assert len(examples) >= 5
    for example in examples:
        graph = load_architecture_text(example, "docs/spec.md")
        assert graph.layers


# --- networks nobody listed, in the language as it is ----------------------------------------

def bn(c):
    return 2 * c                          # scale and shift; the running statistics are state


def test_mobilenet_v2_inverted_residual():
    graph, s = spec("mobilenet_v2")
    # 24 -> 24, expansion 6, stride 1: 1×1 expand, 3×3 depthwise, 1×1 linear project, + identity
    hidden = 24 * 6
    same = 24 * hidden + bn(hidden) + 3 * 3 * hidden + bn(hidden) + hidden * 24 + bn(24)
    assert same == 8_832
    assert params_under(graph, "stage2.inverted_residual2.") == same
    assert "stage2.inverted_residual2.residual1.add" in graph.nodes
    dw = graph.nodes["stage2.inverted_residual2.residual1.body1.depthwise.conv"]
    assert dw.opts.groups == hidden and dw.params == 3 * 3 * hidden
    # 16 -> 24, stride 2: no shortcut at all
    hidden = 16 * 6
    down = 16 * hidden + bn(hidden) + 3 * 3 * hidden + bn(hidden) + hidden * 24 + bn(24)
    assert params_under(graph, "stage2.inverted_residual1.") == down == 5_136
    assert not any(i.startswith("stage2.inverted_residual1.") and i.endswith(".add")
                   for i in graph.nodes)
    assert graph.nodes["stage2.inverted_residual1.body1.project_bn"].shape == (56, 56, 24)
    # expansion 1: no expansion conv
    assert params_under(graph, "stage1.") == 3 * 3 * 32 + bn(32) + 32 * 16 + bn(16)
    assert s.trainable == 3_504_872                            # torchvision's mobilenet_v2
    assert round(s.macs / 1e6) == 301                          # torchvision: 0.30 G


def test_densenet_dense_block():
    graph, s = spec("densenet121")
    growth, width = 32, 4 * 32

    def layer(c):   # BN, 1×1 conv to 4·growth, BN, 3×3 conv to growth
        return bn(c) + c * width + bn(width) + 3 * 3 * width * growth

    assert params_under(graph, "denseblock1.dense_layer1.") == layer(64) == 45_440
    block1 = sum(layer(64 + k * growth) for k in range(6))
    assert params_under(graph, "denseblock1.") == block1 == 335_040
    assert graph.nodes["denseblock1.dense_layer1.branches1.concat"].shape == (56, 56, 96)
    ends = {b: [i for i in graph.nodes if i.startswith(b + ".")][-1]
            for b in ("denseblock1", "denseblock2", "denseblock3", "denseblock4")}
    assert [graph.nodes[e].shape for e in ends.values()] == [
        (56, 56, 256), (28, 28, 512), (14, 14, 1024), (7, 7, 1024)]
    assert s.trainable == 7_978_856                            # torchvision's densenet121


def test_resnext_grouped_bottleneck():
    graph, s = spec("resnext50_32x4d")
    groups, cin, width, out = 32, 64, 128, 256                 # 32 groups × 4 channels
    first = (cin * width + bn(width)
             + 3 * 3 * (width // groups) * width + bn(width)   # grouped: each sees 4 inputs
             + width * out + bn(out)
             + cin * out + bn(out))                            # projection shortcut
    assert params_under(graph, "stage1.bottleneck1.") == first == 63_488
    conv2 = graph.nodes["stage1.bottleneck1.residual1.conv2"]
    assert conv2.opts.groups == groups and conv2.params == 3 * 3 * 4 * 128
    assert s.trainable == 25_028_904                           # torchvision's resnext50_32x4d


def test_inline_block_sugar_names_and_counts():
    """Expressions in sugar names, repeats inside blocks and the identity path of branches."""
    graph = load_architecture_text("""
name: inline
input: {shape: [8, 8, 4]}
blocks:
  unit:
    params: {maps: 4}
    layers:
      - residual: {name: "res${i + 1}", repeat: 2,
                   body: [conv: {maps: $maps, kernel: 3, padding: 1}]}
layers:
  - unit: {maps: 4}
  - branches: {name: "cat${i + 1}", repeat: 2, paths: [[], [conv: {maps: 2, kernel: 1}]]}
""")
    assert "unit1.res2.add" in graph.nodes
    assert graph.nodes["cat2.concat"].shape == (8, 8, 8)
    assert graph.total("params") == 2 * (9 * 4 * 4 + 4) + (4 * 2 + 2) + (6 * 2 + 2)
