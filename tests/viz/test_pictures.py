"""Pictures: training curves, architecture diagrams, feature maps, the pooling demonstration.
Every picture is opened with PIL and checked for its size and for not being blank."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, run_cli


def assert_picture(path, min_w, min_h):
    img = Image.open(path)
    assert img.width >= min_w and img.height >= min_h, img.size
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert a.std() > 10, "the picture is (almost) one flat colour"
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 8, "too few colours: blank?"


def write_metrics(run_dir, epochs, status="finished", acc=0.5):
    run_dir.mkdir(parents=True)
    lines = []
    for e in range(1, epochs + 1):
        lines.append({"step": 10 * e, "epoch": e, "split": "train", "loss": 2.0 / e,
                      "accuracy_digits": min(acc + 0.1 * e, 1.0), "examples_per_s": 900.0})
        lines.append({"step": 10 * e, "epoch": e, "split": "val", "loss": 2.2 / e,
                      "accuracy_digits": min(acc + 0.08 * e, 1.0)})
    lines.append({"step": 10 * epochs, "split": "summary", "seconds": 3.0,
                  "examples_per_s": 900.0, "status": status})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run_dir


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """One real run (a conv net, for feature maps): LeNet on digits, 2 epochs."""
    out = tmp_path_factory.mktemp("runs")
    r = run_cli("train", "experiments/digits_lenet.yaml", "--epochs", "2", "--output", out)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (out / "digits_lenet").iterdir()
    return run


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("img") / "three.png"
    pixels = (d.images[3] / 16 * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((64, 64), Image.Resampling.NEAREST).save(path)
    return path


# --- plot ------------------------------------------------------------------------------------
def test_plot_overlays_runs_in_a_png(lenet_run, tmp_path):
    other = write_metrics(tmp_path / "digits_mlp" / "20250101-120000", 4)
    out = tmp_path / "curves.png"
    r = run_cli("plot", lenet_run, other, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "2 runs" in r.stdout
    assert_picture(out, 800, 300)


def test_plot_in_the_terminal(lenet_run, tmp_path):
    other = write_metrics(tmp_path / "digits_mlp" / "20250101-120000", 4)
    r = run_cli("plot", lenet_run, other, "--terminal")
    assert r.returncode == 0, r.stderr
    assert "loss" in r.stdout and "accuracy" in r.stdout
    assert any(0x2801 <= ord(c) <= 0x28FF for c in r.stdout), "no braille line drawn"
    assert f"digits_lenet/{lenet_run.name}" in r.stdout
    assert "digits_mlp/20250101-120000" in r.stdout


def test_plot_of_a_folder_without_metrics_says_so(tmp_path):
    run = tmp_path / "exp" / "20250101-000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: exp\n")
    r = run_cli("plot", run, "-o", tmp_path / "c.png")
    assert r.returncode == 1
    assert "no metrics.jsonl" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c.png").exists()


def test_braille_canvas_draws_lines():
    from archspec.viz.plot import BrailleCanvas

    c = BrailleCanvas(4, 2)
    c.line(0, 0, 7, 7, "red")
    text = "".join(t.plain for t in c.rows())
    assert text[0] != " " and text[-1] != " " and chr(0x2800) not in text


# --- graph -----------------------------------------------------------------------------------
def test_graph_dot_shows_residual_skip_edges_and_heads(tmp_path):
    out = tmp_path / "net.dot"
    r = run_cli("graph", "experiments/shapes_resnet.yaml", "-o", out)
    assert r.returncode == 0, r.stderr
    dot = out.read_text()
    assert dot.startswith('digraph "shapes_resnet"')
    # identity shortcut: relu1 goes straight to the first add, dashed and labelled
    assert '"relu1" -> "basic1.residual1.add" [style=dashed' in dot
    assert 'label=" skip"' in dot
    # projection shortcut of the strided block
    assert '"basic2.residual1.projection_norm" -> "basic2.residual1.add" [style=dashed' in dot
    assert '"basic1.residual1.batchnorm2" -> "basic1.residual1.add";' in dot   # the body: solid
    assert "conv 3×3/2, 32" in dot and "16×16×32" in dot
    assert '"logits" -> "head:shapes"' in dot


def test_graph_mermaid_shows_branches_and_both_heads(tmp_path):
    out = tmp_path / "net.mmd"
    r = run_cli("graph", "experiments/shapes_inception.yaml", "-o", out, "--no-collapse")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "flowchart TB" in text
    assert "inc1.branches1.concat" in text and "inc1.branches1.path3.conv2" in text
    assert "conv 5×5, 8, relu" in text
    assert text.count("head: ") == 2 and "loss weight 0.3" in text
    ids = {line.split('["')[0].strip(): line for line in text.splitlines() if '["' in line}
    pool = next(k for k, v in ids.items() if v.strip().startswith(f'{k}["pool1<br/>'))
    assert sum(1 for line in text.splitlines() if line.strip().startswith(f"{pool} -->")) == 4


def test_graph_collapses_repeated_blocks():
    from archspec.spec.resolve import load_architecture
    from archspec.viz.graph import build_diagram, to_dot, to_mermaid

    g = load_architecture(ROOT / "architectures" / "resnet50.yaml")
    full = build_diagram(g, collapse=False)
    auto = build_diagram(g)                       # 175 nodes: collapsed by default
    assert len(full.boxes) > 170 and auto.collapsed and len(auto.boxes) < 20
    labels = ["\n".join(b.lines) for b in auto.boxes]
    assert any("stage3.bottleneck2…bottleneck6" in s and "bottleneck ×5" in s for s in labels)
    assert any(s.startswith("stage1.bottleneck1\nblock · 12 layers") for s in labels)
    top = build_diagram(g, depth=0)
    assert [b.id for b in top.boxes if b.category == "block"] == ["stage1", "stage2", "stage3",
                                                                "stage4"]
    assert "stage2" in to_dot(top) and "stage2" in to_mermaid(top)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_renders_png_and_svg_with_graphviz(tmp_path):
    png, svg = tmp_path / "net.png", tmp_path / "net.svg"
    assert run_cli("graph", "experiments/shapes_resnet.yaml", "-o", png).returncode == 0
    assert_picture(png, 150, 800)
    r = run_cli("graph", "architectures/resnet50.yaml", "-o", svg)
    assert r.returncode == 0, r.stderr
    assert "<svg" in svg.read_text() and "bottleneck ×5" in svg.read_text()


def test_graph_without_graphviz_says_how_to_install_it(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    r = run_cli("graph", "experiments/shapes_resnet.yaml", "-o", tmp_path / "net.svg",
                env={"PATH": str(empty)})
    assert r.returncode == 1
    assert "apt-get install graphviz" in r.stderr and "pip install graphviz" in r.stderr
    assert "Traceback" not in r.stderr
    # text formats need nothing
    r = run_cli("graph", "experiments/shapes_resnet.yaml", "-o", tmp_path / "net.dot",
                env={"PATH": str(empty)})
    assert r.returncode == 0 and (tmp_path / "net.dot").exists()


def test_graph_refuses_an_unknown_format(tmp_path):
    r = run_cli("graph", "experiments/shapes_resnet.yaml", "-o", tmp_path / "net.jpgg")
    assert r.returncode == 2 and ".mmd" in r.stderr


# --- feature maps ----------------------------------------------------------------------------
def test_maps_of_every_conv_layer(lenet_run, digit_png, tmp_path):
    out = tmp_path / "maps.png"
    r = run_cli("maps", lenet_run, digit_png, "-o", out)
    assert r.returncode == 0, r.stderr
    for layer in ("conv1", "conv2"):
        assert_picture(tmp_path / f"maps_{layer}.png", 600, 300)
    assert "8×8×32" in r.stdout and "4×4×64" in r.stdout and "prediction" in r.stdout


def test_maps_bad_layer_name_suggests_one():
    from archspec.spec.resolve import load_architecture
    from archspec.viz import VizError
    from archspec.viz.maps import choose_layers

    g = load_architecture(ROOT / "architectures" / "lenet_digits.yaml")
    assert choose_layers(g, []) == ["conv1", "conv2"]
    assert choose_layers(g, ["pool1", "fc1"]) == ["pool1", "fc1"]
    with pytest.raises(VizError) as exc:
        choose_layers(g, ["conv3"])
    assert exc.value.exit_code == 2 and "did you mean 'conv2'" in exc.value.hint


def test_maps_input_is_scaled_to_the_training_range(tmp_path, digit_png):
    from types import SimpleNamespace

    from archspec.viz.maps import prepare_input

    raw = np.linspace(0, 16, 64, dtype=np.float32).reshape(8, 8, 1)
    stats = {"kind": "standard", "mean": [8.0], "std": [4.0]}
    ds = SimpleNamespace(train=SimpleNamespace(x=((raw[None] - 8) / 4)), norm_stats=stats)
    np.save(tmp_path / "x.npy", raw)
    x = prepare_input(tmp_path / "x.npy", (8, 8, 1), ds)
    assert x.shape == (1, 8, 8, 1) and np.allclose(x[0], (raw - 8) / 4)
    img = prepare_input(digit_png, (8, 8, 1), ds)        # 0..255 pixels -> 0..16 -> normalised
    assert img.shape == (1, 8, 8, 1) and -2.01 <= img.min() and img.max() <= 2.01


# --- pooling ---------------------------------------------------------------------------------
def test_pool_picture_side_by_side(tmp_path):
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, (xx + yy) % 32 * 8], -1).astype(np.uint8)
    rgb[10:30, 20:40] = [255, 255, 0]
    Image.fromarray(rgb).save(tmp_path / "in.png")
    out = tmp_path / "pool.png"
    r = run_cli("pool", tmp_path / "in.png", "--op", "all", "--size", "4", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "max 12×16" in r.stdout and "avg 12×16" in r.stdout
    assert_picture(out, 800, 200)
    r = run_cli("pool", tmp_path / "in.png", "--op", "median", "-o", out)
    assert r.returncode == 2


def test_pool_is_the_layer_arithmetic():
    from archspec.viz.pool import pool

    a = np.random.default_rng(0).random((6, 8, 2)).astype(np.float32)
    blocks = a.reshape(3, 2, 4, 2, 2).transpose(0, 2, 1, 3, 4).reshape(3, 4, 4, 2)
    assert np.allclose(pool(a, "max", 2), blocks.max(2))
    assert np.allclose(pool(a, "min", 2), blocks.min(2))
    assert np.allclose(pool(a, "avg", 2), blocks.mean(2), atol=1e-6)
