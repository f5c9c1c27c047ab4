"""Run folders: runs/<experiment>/<timestamp>/ with everything needed to reproduce the run.

    config.yaml         the fully resolved experiment (overrides applied)
    architecture.yaml   the architecture text as trained
    env.json            versions, devices, git commit, seed
    metrics.jsonl       one line per logged step or evaluation
    events/             TensorBoard
    checkpoints/        orbax: latest/ and best/
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

import yaml


class RunError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def new_run_dir(output: str, experiment: str) -> Path:
    # Several processes of one multi-host run must agree on the folder: the launcher sets
    # ARCHSPEC_RUN_NAME for all of them (see README, "Many devices and hosts").
    stamp = os.environ.get("ARCHSPEC_RUN_NAME") or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output) / experiment
    path, n = base / stamp, 1
    while path.exists() and not os.environ.get("ARCHSPEC_RUN_NAME"):
        n += 1
        path = base / f"{stamp}-{n}"
    try:
        path.mkdir(parents=True, exist_ok=bool(os.environ.get("ARCHSPEC_RUN_NAME")))
    except OSError as exc:
        raise RunError(f"cannot create the run folder {path}: {exc.strerror or exc}",
                       "choose a writable folder with --set output=DIR") from None
    return path


def write_setup(run_dir: Path, config: dict, arch_text: str, seed: int) -> None:
    try:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (run_dir / "architecture.yaml").write_text(arch_text)
        (run_dir / "env.json").write_text(json.dumps(environment(seed), indent=2))
    except OSError as exc:
        raise RunError(f"cannot write to the run folder {run_dir}: {exc.strerror or exc}",
                       "check free disk space and permissions") from None


def environment(seed: int) -> dict:
    import flax
    import jax
    import optax

    import archspec

    return {
        "archspec": archspec.__version__, "python": platform.python_version(),
        "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
        "platform": platform.platform(), "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count(),
        "git_commit": _git_commit(), "seed": seed,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=os.getcwd())
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class MetricsLog:
    """Append-only JSON lines, flushed and fsynced per record so a kill loses nothing written."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter
            self.writer = SummaryWriter(str(run_dir / "events"))

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps the restored checkpoint had not reached."""
        if not self.path.is_file():  # absent, or not a regular file (nothing to keep)
            return
        keep = [line for line in self.path.read_text().splitlines()
                if line.strip() and _step_of(line) <= step]
        self.path.write_text("".join(line + "\n" for line in keep))

    def log(self, record: dict) -> None:
        if _process_index():  # one writer per run: process 0
            return
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise RunError(f"cannot write {self.path}: {exc.strerror or exc}",
                           "check free disk space; the last checkpoint is intact") from None
        if self.writer:
            split = record.get("split", "train")
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{split}/{k}", v, record.get("step", 0))

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _process_index() -> int:
    import jax
    return jax.process_index()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 10**12  # unreadable tail of a killed write: drop it


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill
    return out
