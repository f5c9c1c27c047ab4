"""The README and docs/ show what the program does: every command shown parses (its flags
exist, the files it names are in the repository), and the blocks whose output has no timing
and no run in it are exactly what `make docs` (tools/docgen.py) writes today."""
from __future__ import annotations

import importlib.util
import re
import shlex
import sys

import pytest

from helpers import ROOT, cli_commands, command_problems

DOCUMENTS = ["README.md", *sorted(p.relative_to(ROOT).as_posix()
                                  for p in (ROOT / "docs").glob("*.md"))]
spec = importlib.util.spec_from_file_location("docgen", ROOT / "tools/docgen.py")
docgen = importlib.util.module_from_spec(spec)
sys.modules["docgen"] = docgen  # dataclasses look their module up
spec.loader.exec_module(docgen)

ENV_PREFIX = re.compile(r"^(\w+=\S+\s+)+")


def _shown_commands(doc: str) -> list[tuple[int, str]]:
    """(line number, command) of every archspec command in the document's code blocks."""
    found, fenced, first, session = [], False, False, False
    for n, line in enumerate((ROOT / doc).read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced, first = not fenced, not fenced
            continue
        text = line.strip()
        if first:  # a block of `$ command` lines and output: only those lines are commands
            session, first = text.startswith("$ "), False
        if not fenced or not text or session and not text.startswith("$ "):
            continue
        text = docgen.runnable(text[2:]) if text.startswith("$ ") else text.split("  #")[0]
        text = ENV_PREFIX.sub("", text).split(" > ")[0].split(" | ")[0].strip()
        if text.startswith("archspec "):
            found.append((n, text))
    return found


def test_every_command_shown_parses():
    commands = list(cli_commands())
    problems, count = [], 0
    for doc in DOCUMENTS:
        for n, text in _shown_commands(doc):
            count += 1
            problems += [f"{doc}:{n}: {p}" for p in command_problems(shlex.split(text), commands)]
    assert count > 30, count  # the collector sees the blocks
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_wrong_flag_and_a_missing_file():
    assert command_problems(["archspec", "summary", "architectures/resnet50.yaml", "--depht", "0"])
    assert command_problems(["archspec", "train", "experiments/nope.yaml"])
    assert command_problems(["archspec", "trian", "experiments/digits_lenet.yaml"])


def _exact_blocks():
    for doc in docgen.DOCUMENTS:
        lines = (ROOT / doc).read_text().splitlines()
        for block in docgen.blocks(doc, lines):
            if block.check == "exact":
                yield pytest.param(block, lines, id=f"{doc}:{block.start}")


def test_every_example_output_is_generated():
    """Each `$ archspec` block of the README and docs/ is one make docs writes."""
    for doc in docgen.DOCUMENTS:
        lines = (ROOT / doc).read_text().splitlines()
        covered = {b.start for b in docgen.blocks(doc, lines)}
        for i, line in enumerate(lines):
            if line.startswith("```") and i + 1 < len(lines) and lines[i + 1].startswith("$ "):
                assert i + 1 in covered, f"{doc}:{i + 2}: an example output make docs does not write"


@pytest.mark.parametrize("block,lines", list(_exact_blocks()))
def test_stable_outputs_are_what_the_program_prints(block, lines, tmp_path):
    cwd = docgen.scratch(tmp_path / "docs")
    assert docgen.render(block, cwd, copy=False) == lines[block.start:block.end], (
        f"{block.path}:{block.start}: the output shown is not what the command prints now; "
        "run `make docs`")


def test_fold_keeps_head_and_tail():
    lines = ["a", *[f"epoch {i}/9" for i in range(1, 10)], "b"]
    assert docgen.fold(lines, [r"^epoch:2:1"]) == ["a", "epoch 1/9", "epoch 2/9", "...",
                                                   "epoch 9/9", "b"]
    assert docgen.fold(lines, [r"^epoch:0:0"]) == ["a", "...", "b"]


def test_skip_replaces_a_middle_only_when_there_is_one():
    assert docgen.skip(["s run", "x", "y", "e in"], ["^s :^e "]) == ["s run", "...", "e in"]
    assert docgen.skip(["s run", "e in"], ["^s :^e "]) == ["s run", "e in"]
