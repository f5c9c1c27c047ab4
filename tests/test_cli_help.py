"""Every command's --help ends with real examples: the flags exist, the files they name are
in the repository, and the help shows no Python type noise."""
from __future__ import annotations

import glob
import shlex

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from archspec.cli import app

from helpers import ROOT, run_cli

OUTPUT_FLAGS = {"-o", "--output", "--junit"}  # they name files a command writes


def _commands(group=None, prefix=()):
    group = group or get_command(app)
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):  # a group (archspec data)
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


COMMANDS = list(_commands())


def _examples(cmd) -> list[list[str]]:
    lines = (cmd.epilog or "").splitlines()[1:]
    return [shlex.split(line.strip()) for line in lines if line.strip()]


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=lambda c: " ".join(c) if isinstance(c, tuple) else "")
def test_examples_use_real_flags_and_files(path, cmd):
    examples = _examples(cmd)
    assert len(examples) >= 2, f"{' '.join(path)}: at least two examples"
    flags = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    for words in examples:
        assert words[:1 + len(path)] == ["archspec", *path], words
        args = words[1 + len(path):]
        for i, word in enumerate(args):
            if word.startswith("-") and not word[1:2].isdigit():
                assert word in flags, f"{' '.join(words)}: no flag {word}"
            elif ("/" in word or word.endswith((".yaml", ".png"))) and not word.startswith("runs"):
                if i and args[i - 1] in OUTPUT_FLAGS:
                    continue
                assert glob.glob(str(ROOT / word)), f"{' '.join(words)}: {word} does not exist"


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
