"""Shared test helpers: run the CLI as a user would."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHSPEC = [sys.executable, "-m", "archspec"]  # the command, as archspec/__main__.py runs it


def run_cli(*args, env=None, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([*ARCHSPEC, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


def start_cli(*args, env=None) -> subprocess.Popen:
    """`archspec ...` started in the background (stdout and stderr piped, as text)."""
    return subprocess.Popen([*ARCHSPEC, *map(str, args)], cwd=ROOT, text=True,
                            env={**os.environ, "COLUMNS": "120", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_owner(run: Path, pid: int, timeout: float = 120.0) -> None:
    """Until process `pid` has named itself in the run folder's lock file."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((Path(run) / "run.lock").read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never owned {run}")


def only_run(out: Path) -> Path:
    """The single run folder a train command wrote under `out`."""
    (run,) = [p for p in Path(out).glob("*/*") if p.is_dir()]
    return run


def read_records(run: Path) -> list[dict]:
    """metrics.jsonl of a run ([] before its first record)."""
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


OUTPUT_FLAGS = {"-o", "--output", "--junit"}  # they name files a command writes


def cli_commands(group=None, prefix=()):
    """(path, click command) of every archspec command: ("train",), ("data", "show"), ..."""
    from typer.main import get_command

    from archspec.cli import app

    group = group or get_command(app)
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):  # a group (archspec data)
            yield from cli_commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def command_problems(words: list[str], commands=None) -> list[str]:
    """What is wrong with a shown `archspec ...` command line: an unknown command or flag, or
    a repository file it names that does not exist (outputs, runs/ and <placeholders> aside)."""
    import glob

    commands = commands or list(cli_commands())
    line = " ".join(words)
    found = [(p, c) for p, c in commands if words[1:1 + len(p)] == list(p)]
    if words[:1] != ["archspec"] or not found:
        return [f"{line}: no such command"]
    path, cmd = max(found, key=lambda pc: len(pc[0]))
    flags = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    problems, args = [], words[1 + len(path):]
    for i, word in enumerate(args):
        if word.startswith("-") and not word[1:2].isdigit():
            if word.split("=")[0] not in flags:
                problems.append(f"{line}: no flag {word}")
        elif ("/" in word or word.endswith((".yaml", ".png"))) and not (
                word.startswith("runs") or "<" in word):
            if i and args[i - 1] in OUTPUT_FLAGS:
                continue
            if not glob.glob(str(ROOT / word)):
                problems.append(f"{line}: {word} does not exist")
    return problems


class Hang(Exception):
    """Raised by time_limit when the guarded code does not return in time."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Turns a hang into a failure (SIGALRM: main thread only); an open() blocked on a FIFO
    is interrupted too."""
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
