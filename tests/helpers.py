"""Shared test helpers: run the CLI as a user would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHSPEC = [sys.executable, "-m", "archspec.cli"]


def run_cli(*args, env=None, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([*ARCHSPEC, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


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
