"""What a new user coming from Keras or PyTorch types first."""
from __future__ import annotations

import pytest

from archspec import __version__
from archspec.errors import did_you_mean

from helpers import ROOT, only_run, run_cli


@pytest.mark.parametrize("word,choices,ours", [
    ("Conv2D", ["conv", "dense"], "conv"), ("BatchNormalization", ["batchnorm"], "batchnorm"),
    ("filters", ["maps", "kernel"], "maps"), ("kernel_size", ["maps", "kernel"], "kernel"),
    ("strides", ["stride"], "stride"), ("use_bias", ["bias"], "bias")])
def test_keras_and_pytorch_names_get_the_archspec_word(word, choices, ours):
    assert did_you_mean(word, choices) == f"archspec calls it '{ours}'"


def test_a_keras_style_file_is_told_the_archspec_words(tmp_path):
    spec = tmp_path / "k.yaml"
    spec.write_text("name: k\ninput: {shape: [28, 28, 1]}\nlayers:\n"
                    "  - Conv2D: {maps: 8, kernel: 3}\n"
                    "  - conv: {filters: 8, kernel_size: 3}\n  - flatten\n")
    r = run_cli("validate", spec)
    assert r.returncode == 2
    for ours in ("conv", "maps", "kernel"):
        assert f"hint:     archspec calls it '{ours}'" in r.stderr


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"archspec {__version__}"


def _setup_of(architecture: str, batch_size: int = 32, steps: int = 5, input_shape=None):
    """What slow_step_notice reads of a Setup, without loading data or building a model."""
    from types import SimpleNamespace

    from archspec.spec.resolve import load_architecture

    graph = load_architecture(ROOT / "architectures" / architecture, input_shape=input_shape)
    return SimpleNamespace(graph=graph, exp=SimpleNamespace(batch_size=batch_size),
                           total_steps=steps)


def test_a_slow_first_step_is_said_before_it_starts():
    from archspec.use.estimate import matmul_rate, train_flops
    from archspec.ui.train_tables import slow_step_notice

    notice = slow_step_notice(_setup_of("vgg16.yaml"))
    # 15.47 G MACs per 224×224 example (reference.md); 6 FLOPs per MAC for a train step
    flops = train_flops(15_470_000_000, 32)
    assert "15.47 G MACs per example" in notice and f"{flops / 1e12:,.2f} T FLOPs" in notice
    seconds = float(notice.split("at least ")[1].split(" s per step")[0].replace(",", ""))
    assert seconds == pytest.approx(flops / matmul_rate(), rel=0.02)
    assert "try --input-shape 64,64,3 first (about 12× fewer FLOPs per step)" in notice


def test_small_networks_get_no_estimate():
    from archspec.use import estimate
    from archspec.ui.train_tables import slow_step_notice

    estimate.matmul_rate.cache_clear()
    assert slow_step_notice(_setup_of("lenet5.yaml")) is None
    assert estimate.matmul_rate.cache_info().misses == 0  # nothing was timed either


def test_train_takes_an_input_shape_and_the_run_keeps_it(tmp_path):
    r = run_cli("train", ROOT / "architectures/lenet5.yaml", "--data", "digits",
                "--input-shape", "36,36,1", "--steps", "2", "--output", tmp_path)
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path)
    import yaml

    assert yaml.safe_load((run / "architecture.yaml").read_text())["input"]["shape"] == [36, 36, 1]
    r = run_cli("train", "--resume", run, "--input-shape", "40,40,1")
    assert r.returncode == 2 and "keeps the input shape it started with" in r.stderr


def test_a_data_name_given_on_the_command_line_is_reported_there():
    r = run_cli("train", ROOT / "architectures/lenet5.yaml", "--data", "shapez")
    assert r.returncode == 2
    assert r.stderr.startswith("--data shapez: error:"), r.stderr
    assert "lenet5.yaml:1:1" not in r.stderr and "did you mean 'shapes'" in r.stderr
    r = run_cli("train", ROOT / "architectures/mlp.yaml")  # no --data: the default is named
    assert r.returncode == 2 and "--data shapes (the default: no --data given)" in r.stderr
