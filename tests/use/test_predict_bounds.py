"""`archspec predict` on hostile inputs: a .npy whose header declares terabytes is refused
before anything is allocated, and an input that makes the network's output overflow (a
finite 3e38) is a clear error, never "nan%"."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A perceptron on the flat digits (input 64 values, standardised per feature)."""
    out = tmp_path_factory.mktemp("digits")
    r = run_cli("train", ROOT / "experiments" / "digits_mlp.yaml", "--epochs", "1",
                "--output", out)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run


def test_an_npy_declaring_four_terabytes_is_refused(digits_run, tmp_path):
    bomb = tmp_path / "x.npy"
    with open(bomb, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**12 // 64, 64)})
        f.write(b"\0" * 256)
    r = run_cli("predict", digits_run, bomb, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert str(bomb) in text and "declares 4,000,000,000,000 bytes" in text


def test_a_fifo_as_an_input_is_refused(digits_run, tmp_path):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    r = run_cli("predict", digits_run, fifo, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_an_input_that_overflows_the_network_is_an_error_not_nan(digits_run, tmp_path):
    a = np.zeros((2, 64), np.float32)
    a[1] = 3e38  # finite, within float32: the checks on inputs let it through
    npy = tmp_path / "big.npy"
    np.save(npy, a)
    r = run_cli("predict", digits_run, npy, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert not re.search(r"nan\s*%", r.stdout + r.stderr, re.I)
    text = " ".join(r.stderr.split())
    assert f"{npy}:index 1" in text and "not finite" in text
