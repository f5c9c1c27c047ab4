"""The runs under a folder, one row each, read from the run folders alone (config.yaml,
env.json, metrics.jsonl): experiment, date, best validation metric, test metric, epochs,
speed and how the run ended. The table: archspec/ui/runs.py."""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from archspec.engine.reporter import Warn, ignore
from archspec.errors import UsageError, did_you_mean
from archspec.reading import UnreadableFile, read_bytes

RUNNING = "running/killed"   # no summary record: still running, or killed hard
UNREADABLE = "unreadable"    # metrics.jsonl is not a file archspec reads (a FIFO, too big)
SORT_KEYS = ("date", "experiment", "run", "val", "test", "epochs", "speed", "status")


@dataclass
class RunRow:
    run: str                      # the folder, relative to the folder listed
    experiment: str
    date: str                     # "YYYY-MM-DD HH:MM:SS", when the run started
    val_metric: str | None        # "accuracy_<head>" or "loss"
    best_val: float | None        # best over epochs: highest accuracy or lowest loss
    best_epoch: int | None
    test_metric: str | None
    test: float | None
    epochs: int                   # epochs finished
    planned_epochs: int | None
    examples_per_s: float | None
    seconds: float | None
    status: str                   # finished, stopped, collapsed, ... or running/killed

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.jsonl").exists() or (
        (path / "config.yaml").exists() and (path / "architecture.yaml").exists())


def find_run_dirs(root: Path) -> list[Path]:
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found = {p.parent for name in ("metrics.jsonl", "config.yaml") for p in root.rglob(name)}
    return sorted(p for p in found if is_run_dir(p) and "checkpoints" not in p.relative_to(root).parts)


MAX_SMALL = 2**20  # env.json and config.yaml of a run: a few kilobytes each


def _small(path: Path, warn: Warn) -> bytes | None:
    """A small run file, bounded and never waited on; None (told to `warn`) when it cannot
    be read, and quietly when it is absent."""
    try:
        return read_bytes(path, MAX_SMALL, str(path), exit_code=1)
    except UnreadableFile as exc:
        if not exc.missing:
            warn(exc.message, "the run is listed without it")
        return None


def _started(run_dir: Path, warn: Warn) -> str:
    try:
        started = json.loads(_small(run_dir / "env.json", warn) or b"{}").get("started")
        if started:
            return str(started).replace("T", " ")
    except (ValueError, AttributeError):
        pass
    ref = run_dir / "config.yaml" if (run_dir / "config.yaml").exists() else run_dir
    return dt.datetime.fromtimestamp(ref.stat().st_mtime).isoformat(sep=" ", timespec="seconds")


def _config(run_dir: Path, warn: Warn) -> dict:
    try:
        cfg = yaml.safe_load(_small(run_dir / "config.yaml", warn) or b"")
        return cfg if isinstance(cfg, dict) else {}
    except yaml.YAMLError:
        return {}


def read_run(run_dir: Path, root: Path | None = None, warn: Warn = ignore) -> RunRow:
    from archspec.runs.files import RunFolderError
    from archspec.runs.records import read_metrics

    run_dir = Path(run_dir)
    try:
        records, unreadable = read_metrics(run_dir), False
    except RunFolderError as exc:
        warn(exc.message, "the run is listed without its metrics")
        records, unreadable = [], True
    cfg = _config(run_dir, warn)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    test = [r for r in records if r.get("split") == "test"]
    summary = [r for r in records if r.get("split") == "summary"]
    acc = next((k for r in val + train + test for k in r if k.startswith("accuracy")), None)
    val_metric = acc if acc and any(_finite(r.get(acc)) for r in val) else "loss" if val else None
    best_val = best_epoch = None
    scored = [r for r in val if _finite(r.get(val_metric))] if val_metric else []
    if scored:
        pick = max if val_metric != "loss" else min
        best = pick(scored, key=lambda r: r[val_metric])
        best_val, best_epoch = float(best[val_metric]), best.get("epoch")
    test_metric = test_value = None
    if test:
        test_metric = acc if acc and _finite(test[-1].get(acc)) else "loss"
        test_value = test[-1].get(test_metric)
        test_value = float(test_value) if _finite(test_value) else None
    last = summary[-1] if summary else {}
    speed = last.get("examples_per_s")
    if not _finite(speed) and train:
        speeds = [r["examples_per_s"] for r in train if _finite(r.get("examples_per_s"))]
        speed = sum(speeds) / len(speeds) if speeds else None
    planned = cfg.get("epochs") if cfg.get("steps") is None else None
    name = root is not None and run_dir.resolve() != Path(root).resolve()
    return RunRow(
        run=str(run_dir.relative_to(root)) if name else str(run_dir),
        experiment=str(cfg.get("name") or run_dir.parent.name),
        date=_started(run_dir, warn),
        val_metric=val_metric, best_val=best_val, best_epoch=best_epoch,
        test_metric=test_metric, test=test_value,
        epochs=max((int(r.get("epoch", 0)) for r in train), default=0),
        planned_epochs=planned if isinstance(planned, int) else None,
        examples_per_s=float(speed) if _finite(speed) else None,
        seconds=float(last["seconds"]) if _finite(last.get("seconds")) else None,
        status=UNREADABLE if unreadable else str(last.get("status") or RUNNING))


def list_runs(root: Path, warn: Warn = ignore) -> list[RunRow]:
    """Every run under `root`; a file of a run that cannot be read is told to `warn` and the
    run listed without it (metrics.jsonl: status "unreadable")."""
    root = Path(root)
    if not root.exists():
        raise UsageError(f"{root} does not exist",
                        "pass the folder runs are written to (default: runs)")
    return [read_run(p, root, warn) for p in find_run_dirs(root)]


def _metric_key(metric: str | None, value: float | None):
    """Best first: accuracies high to low, then losses low to high, then nothing."""
    if value is None or metric is None:
        return (2, 0.0)
    return (1, value) if metric == "loss" else (0, -value)


def sort_runs(rows: list[RunRow], key: str = "date", reverse: bool = False) -> list[RunRow]:
    if key not in SORT_KEYS:
        raise UsageError(f"cannot sort by '{key}'", did_you_mean(key, SORT_KEYS) or
                        f"sort by one of: {', '.join(SORT_KEYS)}")
    keys = {
        "date": lambda r: r.date, "experiment": lambda r: (r.experiment, r.date),
        "run": lambda r: r.run, "val": lambda r: _metric_key(r.val_metric, r.best_val),
        "test": lambda r: _metric_key(r.test_metric, r.test),
        "epochs": lambda r: (-r.epochs, r.date),
        "speed": lambda r: -(r.examples_per_s or 0.0), "status": lambda r: (r.status, r.date),
    }
    return sorted(rows, key=keys[key], reverse=reverse)
