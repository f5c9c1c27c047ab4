"""Every command's --help ends with real examples: the flags exist, the files they name are
in the repository, and the help shows no Python type noise."""
from __future__ import annotations

import shlex

import pytest
from typer.testing import CliRunner

from archspec.cli import app

from helpers import cli_commands, command_problems, run_cli

COMMANDS = list(cli_commands())


def _examples(cmd) -> list[list[str]]:
    lines = (cmd.epilog or "").splitlines()[1:]
    return [shlex.split(line.strip()) for line in lines if line.strip()]


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=lambda c: " ".join(c) if isinstance(c, tuple) else "")
def test_examples_use_real_flags_and_files(path, cmd):
    examples = _examples(cmd)
    assert len(examples) >= 2, f"{' '.join(path)}: at least two examples"
    for words in examples:
        assert words[:1 + len(path)] == ["archspec", *path], words
        assert not command_problems(words, COMMANDS)


def test_help_shows_examples_and_no_type_noise():
    runner = CliRunner()
    for path, _ in COMMANDS:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert r.exit_code == 0, r.output
        assert "Examples" in r.output and "<bool>" not in r.output and "<list[" not in r.output, \
            " ".join(path)


def test_cheap_examples_run(tmp_path):
    """The examples that need no trained run and no training actually run."""
    for line in ("archspec validate experiments/digits_lenet.yaml",
                 "archspec summary architectures/resnet50.yaml --depth 0",
                 "archspec schema experiment"):
        words = shlex.split(line)
        for path, cmd in COMMANDS:
            if words[1:1 + len(path)] == list(path):
                assert line in cmd.epilog, line
        r = run_cli(*words[1:])
        assert r.returncode == 0, line + "\n" + r.stderr
