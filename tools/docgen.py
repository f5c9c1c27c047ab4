"""`make docs`: every example output in README.md and docs/*.md, regenerated from real runs.

A generated block is a fenced block of `$ command` lines and their output, preceded by a
directive comment (invisible on GitHub):

    <!-- make docs: check=exact fold='^epoch +\\d+/:3:2' copy=curves.png:docs/img/curves.png -->

The commands run in order, document after document, in one scratch folder (build/docs) that
sees the repository's folders through links and starts with an empty runs/, so later blocks
(eval, plot, runs) read the runs that earlier blocks trained. Directive keys:

- check=exact: tests/docs/test_docs.py re-runs the block and compares it with the text (use it for
  output with no timings and no run in it: summary, validate); check=parse (the default): the
  test checks that the command parses and names files that exist.
- fold=REGEX:HEAD:TAIL: a run of consecutive output lines matching REGEX longer than
  HEAD + TAIL + 1 keeps its first HEAD and last TAIL lines around one `...` line.
- skip=START:END: the lines between a line matching START and the next matching END
  become one `...` line (a long middle whose lines have no common form).
- setup='COMMAND': run before the block, its output not shown (runs a later block reads).
- copy=SRC:DST: after the block, copy a file it wrote into the repository (docs/img/...).
- exit=N: the exit code every command of the block must end with (default 0); any other
  stops make docs before the document is written.

`$ make run   # = archspec train ...` runs the command after `# =`. `runs/NAME/<timestamp>`
stands for the newest run of NAME, and its real path is written back as `<timestamp>`.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/ci.md"]
LINKED = ["architectures", "experiments", "sweeps", "docs", "tests", "schema", "benchmarks"]
DIRECTIVE = re.compile(r"^<!-- make docs:(.*?)-->\s*$")
PLACEHOLDER = re.compile(r"runs/([\w.-]+)/<timestamp>")
COLUMNS = "100"


@dataclass
class Block:
    """One generated block: where it sits in its document, its directive and its commands."""

    path: str
    start: int                 # index of the line after the opening fence
    end: int                   # index of the closing fence
    options: dict = field(default_factory=dict)
    commands: list = field(default_factory=list)   # the shown command lines

    @property
    def check(self) -> str:
        return self.options.get("check", ["parse"])[-1]


def parse_directive(text: str) -> dict:
    options: dict[str, list[str]] = {}
    for word in shlex.split(text):
        key, _, value = word.partition("=")
        options.setdefault(key, []).append(value)
    return options


def blocks(path: str, lines: list[str]) -> list[Block]:
    """The generated blocks of a document (lines without their newlines)."""
    found, i = [], 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if not m:
            i += 1
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            raise SystemExit(f"{path}:{i + 1}: a make-docs directive must precede a ``` block")
        start = i + 2
        end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
        block = Block(path, start, end, parse_directive(m.group(1)))
        block.commands = [line[2:] for line in lines[start:end] if line.startswith("$ ")]
        found.append(block)
        i = end + 1
    return found


def runnable(shown: str) -> str:
    """The command line make docs runs for a shown one (`make run  # = archspec ...`)."""
    if "# = " in shown:
        return shown.split("# = ", 1)[1].strip()
    return shown.split("  #", 1)[0].strip()


def fold(output: list[str], specs: list[str]) -> list[str]:
    for spec in specs:
        regex, head, tail = spec.rsplit(":", 2)
        pattern, head, tail = re.compile(regex), int(head), int(tail)
        out, run = [], []
        for line in output + [None]:
            if line is not None and pattern.search(line):
                run.append(line)
                continue
            out += run if len(run) <= head + tail + 1 else (
                run[:head] + ["..."] + run[len(run) - tail:])
            run = []
            if line is not None:
                out.append(line)
        output = out
    return output


def skip(output: list[str], specs: list[str]) -> list[str]:
    for spec in specs:
        start, end = (re.compile(p) for p in spec.split(":", 1))
        out, inside = [], False
        for line in output:
            if inside and end.search(line):
                inside = False
            if inside:
                if out[-1] != "...":
                    out.append("...")
                continue
            out.append(line)
            inside = bool(start.search(line))
        output = out
    return output


def scratch(where: Path) -> Path:
    """A clean folder that sees the repository's folders, with an empty runs/."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name in LINKED:
        (where / name).symlink_to(ROOT / name)
    return where


def sample_photo(where: Path) -> None:
    """china.jpg, the pool example's photograph (scikit-learn's sample image)."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    Image.fromarray(load_sample_image("china.jpg")).save(where / "china.jpg")


def newest_run(cwd: Path, name: str) -> str:
    runs = sorted(p for p in (cwd / "runs" / name).iterdir() if p.is_dir())
    if not runs:
        raise SystemExit(f"no run of {name} yet: train it in an earlier block or a setup=")
    return f"runs/{name}/{runs[-1].name}"


def execute(command: str, cwd: Path, exit_code: int = 0) -> list[str]:
    """Run one command as a user would (archspec on PATH, not a terminal, COLUMNS wide);
    its output lines, with the placeholders it filled written back."""
    filled = {}
    for m in PLACEHOLDER.finditer(command):
        filled[newest_run(cwd, m.group(1))] = m.group(0)
    for real, shown in filled.items():
        command = command.replace(shown, real)
    env = dict(os.environ, COLUMNS=COLUMNS, NO_COLOR="1", TERM="dumb",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("FORCE_COLOR", None)
    r = subprocess.run(command, shell=True, cwd=cwd, env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = [line.rstrip() for line in r.stdout.rstrip("\n").splitlines()]
    if r.returncode != exit_code:
        raise SystemExit(f"`{command}` exited {r.returncode}, not {exit_code}:\n"
                         + "\n".join(lines[-30:]))
    for real, shown in filled.items():
        lines = [line.replace(real, shown) for line in lines]
    return lines


def render(block: Block, cwd: Path, copy: bool = True) -> list[str]:
    """The block's new body: each shown command followed by its (folded) output."""
    for setup in block.options.get("setup", []):
        out = execute(setup, cwd)
        print(f"  setup: {setup} ({len(out)} lines)", file=sys.stderr)
    body, code = [], int(block.options.get("exit", ["0"])[-1])
    for shown in block.commands:
        print(f"  $ {shown}", file=sys.stderr)
        out = execute(runnable(shown), cwd, code)
        out = skip(out, block.options.get("skip", []))
        body += [f"$ {shown}", *fold(out, block.options.get("fold", []))]
    for spec in (block.options.get("copy", []) if copy else []):
        src, dst = spec.split(":")
        shutil.copyfile(cwd / src, ROOT / dst)
    return body


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("documents", nargs="*", default=DOCUMENTS)
    ap.add_argument("--scratch", type=Path, default=ROOT / "build" / "docs")
    args = ap.parse_args(argv)
    cwd = scratch(args.scratch)
    sample_photo(cwd)
    for doc in args.documents:
        path = ROOT / doc
        lines = path.read_text().splitlines()
        found = blocks(doc, lines)
        print(f"{doc}: {len(found)} generated block(s)", file=sys.stderr)
        bodies = [render(b, cwd) for b in found]  # in order: later blocks read earlier runs
        for b, body in reversed(list(zip(found, bodies))):  # from the end: indices hold
            lines[b.start:b.end] = body
        path.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
