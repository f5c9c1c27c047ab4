"""The broken-spec corpus: every file in tests/corpus states, in its header, the exact errors
`archspec validate` must report for it (line:column, message, and optionally the layer path,
expected, found and hint). All of a file's errors come in one run, nothing else is reported,
and the command exits with status 2 without a Python traceback.

Header lines (each `expect-*` line refines the `expect:` line above it):

    # expect: LINE:COL message substring
    # expect-path: layer path substring
    # expect-expected: substring of what was expected
    # expect-found: substring of what was found
    # expect-hint: substring of the hint
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture

# A bound that only a hang or a real expansion would cross (expanding a billion-laughs
# file or a huge repeat takes minutes or all memory); speed itself lives in benchmarks/.
QUICK = 15.0

CORPUS = Path(__file__).resolve().parent
FILES = sorted(CORPUS.glob("*.yaml"))
_EXPECT = re.compile(r"^#\s*expect:\s*(\d+):(\d+)\s+(.+?)\s*$")
_DETAIL = re.compile(r"^#\s*expect-(path|hint|expected|found):\s*(.+?)\s*$")

# Run through the real command line: one of each family of failure.
SUBPROCESS = ["many_errors", "yaml_tab", "python_tag", "billion_laughs", "empty", "huge_dense",
              "block_definition_typo"]


@dataclass
class Expected:
    line: int
    col: int
    message: str
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.line}:{self.col} {self.message}"


def expectations(path: Path) -> list[Expected]:
    out: list[Expected] = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.startswith("#"):
            break  # the header ends at the first line that is not a comment
        if m := _EXPECT.match(text):
            out.append(Expected(int(m[1]), int(m[2]), m[3]))
        elif m := _DETAIL.match(text):
            assert out, f"{path.name}: `expect-{m[1]}` before any `expect:`"
            assert m[1] not in out[-1].details, f"{path.name}: two `expect-{m[1]}` lines"
            out[-1].details[m[1]] = m[2]
    return out


def _errors(path: Path):
    start = time.perf_counter()
    with pytest.raises(SpecErrors) as info:
        load_architecture(path)
    return info.value.errors, time.perf_counter() - start


def test_corpus_is_large_and_annotated():
    assert len(FILES) >= 30
    for path in FILES:
        assert expectations(path), f"{path.name} states no `# expect:` line"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_library_reports_exactly_the_expected_errors(path):
    expected = expectations(path)
    errors, seconds = _errors(path)
    got = [f"{e.pos.line}:{e.pos.col} {e.message}" if e.pos else f"?:? {e.message}"
           for e in errors]
    assert len(errors) == len(expected), (
        f"{path.name}: expected {len(expected)} error(s), got {len(errors)}:\n  "
        + "\n  ".join(got))
    for exp, err, text in zip(expected, errors, got):
        assert err.pos is not None and (err.pos.line, err.pos.col) == (exp.line, exp.col), (
            f"{path.name}: expected an error at {exp.line}:{exp.col}, got {text}")
        assert Path(err.pos.file) == path
        assert exp.message in err.message, f"{path.name}: expected '{exp}', got '{text}'"
        for key, want in exp.details.items():
            have = getattr(err, key) or ""
            assert want in have, f"{path.name} {exp}: {key} should contain {want!r}, is {have!r}"
        # every error says what was expected and what was found
        assert err.expected and err.found, f"{path.name} {text}: no expected/found"
    assert seconds < QUICK, f"{path.name} took {seconds:.1f} s to refuse"


def _command() -> list[str]:
    script = Path(sys.executable).with_name("archspec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archspec"]


@pytest.mark.parametrize("stem", SUBPROCESS)
def test_command_line_reports_all_errors(stem):
    path = CORPUS / f"{stem}.yaml"
    expected = expectations(path)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    proc = subprocess.run([*_command(), "validate", str(path)], capture_output=True, text=True,
                          timeout=60, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    for exp in expected:
        head = f"{path}:{exp.line}:{exp.col}: error: "
        assert any(line.startswith(head) and exp.message in line
                   for line in output.splitlines()), f"missing '{head}{exp.message}' in:\n{output}"
    assert output.count(": error: ") == len(expected), output
    n = len(expected)
    assert f"{n} error{'s' if n != 1 else ''} in {path}" in output


def test_validate_reports_every_file_and_fails_if_one_is_broken(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("name: ok\ninput: {shape: [8]}\nlayers:\n  - dense: {units: 2}\n")
    bad = CORPUS / "quoted_int.yaml"
    proc = subprocess.run([*_command(), "validate", str(good), str(bad)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2
    assert f"ok {good}" in proc.stdout
    assert f"{bad}:" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
