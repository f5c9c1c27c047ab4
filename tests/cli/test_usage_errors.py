"""Bad command lines end with a usage message and exit status 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
name: tiny
input: {shape: [8, 8, 1]}
layers:
  - conv: {maps: 4, kernel: 3}
  - flatten
  - dense: {units: 2}
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "good.yaml"
    path.write_text(GOOD)
    return path


def archspec(*args) -> tuple[int, str]:
    script = Path(sys.executable).with_name("archspec")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "archspec"]
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    return proc.returncode, proc.stdout + proc.stderr


CASES = {
    "validate-missing-file": (["validate", "/no/such/spec.yaml"], "does not exist"),
    "validate-directory": (["validate", "{dir}"], "is a directory"),
    "validate-no-file": (["validate"], "Missing argument"),
    "validate-unknown-option": (["validate", "--strict", "{good}"], "No such option: --strict"),
    "summary-missing-file": (["summary", "/no/such/spec.yaml"], "does not exist"),
    "summary-no-file": (["summary"], "Missing argument"),
    "summary-unknown-option": (["summary", "{good}", "--dept", "1"], "No such option: --dept"),
    "summary-negative-depth": (["summary", "{good}", "--depth", "-1"], "depth must be >= 0"),
    "summary-depth-not-a-number": (["summary", "{good}", "--depth", "two"], "--depth"),
    "summary-shape-not-numbers": (["summary", "{good}", "--input-shape", "8,x"],
                                  "expected positive integers"),
    "summary-shape-zero": (["summary", "{good}", "--input-shape", "0,8,1"],
                           "expected positive integers"),
    "summary-shape-empty": (["summary", "{good}", "--input-shape", ","],
                            "expected positive integers"),
    "unknown-command": (["summarise", "{good}"], "No such command"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_arguments_print_usage_and_exit_2(name, good):
    args, needle = CASES[name]
    args = [a.format(good=good, dir=good.parent) for a in args]
    code, out = archspec(*args)
    assert code == 2, out
    assert "Usage:" in out, out
    assert needle in out, out
    assert "Traceback" not in out, out


def test_summary_of_a_broken_spec_prints_located_errors(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(GOOD.replace("maps: 4", "maps: '4'"))
    code, out = archspec("summary", spec)
    assert code == 2, out
    assert f"{spec}:4:18: error: conv1: 'maps' must be an integer" in out, out
    assert "Traceback" not in out


def test_input_shape_override_that_breaks_the_model_is_a_located_error(good):
    code, out = archspec("summary", good, "--input-shape", "2,2,1")
    assert code == 2, out
    assert f"{good}:4:29: error: conv1 (input: input (2, 2, 1))" in out and "kernel 3 is larger" in out, out
    assert "Traceback" not in out
