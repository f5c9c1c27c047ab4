"""What a new user coming from Keras or PyTorch types first."""
from __future__ import annotations

import pytest

from archspec import __version__
from archspec.errors import did_you_mean

from helpers import run_cli


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
