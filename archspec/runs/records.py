"""The records of a run: metrics.jsonl (one line per logged step or evaluation),
attempts.json (every restart) and best.json (the best validation score so far). Damage is
reported through `warn` (a `Warn`: message, hint), never printed here."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from archspec.engine.reporter import Warn, ignore
from archspec.reading import UnreadableFile, read_bytes
from archspec.runs.files import (Damaged, RunFolderError, append_line, read_json, refuse_link,
                                      refuse_links, write_json, write_text)


class MetricsLog:
    """Append-only JSON lines, flushed and fsynced per record so a kill loses nothing written."""

    HINT = "check free disk space; the last checkpoint is intact"
    FLUSH_SECONDS = 5.0

    def __init__(self, run_dir: Path, tensorboard: bool = True, warn: Warn = ignore):
        self.warn = warn
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        self._flushed, self._last_per_step = time.monotonic(), {}
        self._resumed = None  # (restored step, step and epoch of the last train record kept)
        refuse_links(run_dir)
        if tensorboard and not _process_index():
            from archspec.runs.events import EventsFile
            self.writer = EventsFile(Path(run_dir) / "events")

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps the restored checkpoint had not reached, and
        remember where training restarts so the epoch it restarts in is marked partial."""
        if not self.path.is_file():  # absent, or not a regular file (nothing to keep)
            self._resumed = (step, 0, None)
            return
        records = _records(self.path, self.warn)
        keep = [r for r in records if _step(r) <= step]
        trains = [r for r in keep if r.get("split") == "train"]
        self._resumed = (step, _step(trains[-1]) if trains else 0,
                         trains[-1].get("epoch") if trains else None)
        if _process_index():  # one writer per run: process 0
            return
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep), self.HINT)

    def log(self, record: dict) -> None:
        if _process_index():  # one writer per run: process 0
            return
        if record.get("split") == "train" and self._resumed is not None:
            record = self._mark_resumed(record)
        append_line(self.path, json.dumps(record) + "\n", self.HINT)
        if self.writer:
            split, step = record.get("split", "train"), record.get("step", 0)
            for k, v in record.items():
                if isinstance(v, dict):  # per layer: grad_norms/conv1, dead_units/conv1
                    for layer, x in v.items():
                        if _number(x):
                            self.writer.add_scalar(f"{split}/{k}/{layer}", x, step)
                elif _number(v) and k not in ("step", "epoch", "checkpoint_step"):
                    self.writer.add_scalar(f"{split}/{k}", v, step)
            self._flush_when_due()

    def per_step(self, tag: str, values, first_step: int) -> None:
        """A TensorBoard scalar per step (the learning rate), from `first_step` on: every
        step where the value changes and the last one (TensorBoard draws the flat stretch
        between them; a constant rate is not 6,000 equal points)."""
        if self.writer and not _process_index():
            values = np.asarray(values, dtype=np.float64)
            keep = np.ones(len(values), bool)
            keep[1:-1] = values[1:-1] != values[:-2]
            if self._last_per_step.get(tag) == (first_step - 1, values[0]) and len(values) > 1:
                keep[0] = False  # the same value as the step before, already written
            for i in np.flatnonzero(keep):
                self.writer.add_scalar(tag, float(values[i]), first_step + int(i))
            if len(values):
                self._last_per_step[tag] = (first_step + len(values) - 1, values[-1])
            self._flush_when_due()

    def _flush_when_due(self) -> None:
        """Events reach the file at most every FLUSH_SECONDS (and at close): a flush is a
        write call, and a run of tiny epochs would make hundreds. A full disk is still found
        here, within seconds, not at the end of the run; metrics.jsonl has every record."""
        now = time.monotonic()
        if now - self._flushed >= self.FLUSH_SECONDS:
            self.writer.flush()
            self._flushed = now

    def text(self, tag: str, text: str) -> None:
        """A text panel in TensorBoard (the architecture), shown as written."""
        if self.writer and not _process_index():
            self.writer.add_text(tag, "\n".join("    " + line for line in text.splitlines()))
            self.writer.flush()

    def _mark_resumed(self, record: dict) -> dict:
        """The first epoch after a resume: partial when it started mid-way (after a
        mid-epoch checkpoint, or after a stop); a record of the same epoch from before the
        stop is partial too."""
        restored, last_step, last_epoch = self._resumed
        self._resumed = None
        same_epoch = last_epoch is not None and record.get("epoch") == last_epoch
        if not (restored > last_step or same_epoch):
            return record
        if same_epoch:
            records = _records(self.path)
            for r in reversed(records):
                if r.get("split") == "train" and r.get("epoch") == last_epoch:
                    r["partial"] = True
                    break
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in records), self.HINT)
        return {**record, "partial": True}

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _process_index() -> int:
    """Non-zero in every process but the one that writes the run's records."""
    from archspec.engine.distributed import is_primary
    return 0 if is_primary() else 1


def _step(record: dict) -> int:
    try:
        return int(record.get("step", 0))
    except (TypeError, ValueError):
        return 10**12


# A record per epoch and split is a few kilobytes (per-layer norms included): 256 MiB is
# tens of thousands of epochs. A bigger file is not a log archspec wrote.
MAX_METRICS = 256 * 2**20


def _records(path: Path, warn: Warn = ignore) -> list[dict]:
    """The records of a metrics.jsonl. A last line cut by a kill is dropped quietly; a
    damaged line before it is dropped, told to `warn`. A FIFO, a device or a file over
    MAX_METRICS is a RunFolderError: never waited on, never read whole."""
    try:
        data = read_bytes(path, MAX_METRICS, str(path), exit_code=1)
    except UnreadableFile as exc:
        if exc.missing:
            return []
        raise RunFolderError(exc.message, exc.hint) from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    out, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and _step(record) < 10**12:
            out.append(record)
        elif number < len(lines):
            bad.append(number)
    if bad:
        warn(f"{path}: {len(bad)} damaged line{'s' if len(bad) > 1 else ''} dropped "
              f"(line {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})",
              "the metrics of those steps are lost; the checkpoints are not affected")
    return out


def read_metrics(run_dir: Path) -> list[dict]:
    return _records(Path(run_dir) / "metrics.jsonl")


# ---------------------------------------------------------------- attempts and best score

FAILED = ("collapsed", "diverged")


def read_attempts(run_dir: Path) -> list:
    """The failed attempts of a run (attempts.json): how many restarts it has used, and so
    the seed and learning rate of the next one. A damaged file is an error, never a guess."""
    p = Path(run_dir) / "attempts.json"
    refuse_link(p)
    value = read_json(p)
    if value is None:
        return []
    why = value.why if isinstance(value, Damaged) else None
    if why is None and not (isinstance(value, list) and all(
            isinstance(a, dict) and isinstance(a.get("outcome"), str) for a in value)):
        why = "not a list of attempts"
    if why:
        raise RunFolderError(f"{p} is damaged ({why})",
                       "it counts the restarts of this run (their seeds and learning rates): "
                       "restore it, or delete it to continue as the first attempt")
    return [a for a in value if a["outcome"] in FAILED]


def write_attempts(run_dir: Path, attempts: list) -> None:
    if _process_index():  # one writer per run: process 0
        return
    write_json(Path(run_dir) / "attempts.json", attempts)


def read_best(run_dir: Path, warn: Warn = ignore):
    """The best validation score so far (best.json), as `score_of` gives it. A damaged file
    is rebuilt from the best checkpoint's step and its validation record, with a warning."""
    p = Path(run_dir) / "best.json"
    refuse_link(p)
    value = read_json(p)
    if value is None:
        return None
    if isinstance(value, dict) and _number(value.get("score")):
        loss = value.get("loss")  # absent in files written before ties were broken by it
        return (float(value["score"]), -float(loss) if _number(loss) else float("-inf"))
    why = value.why if isinstance(value, Damaged) else "no score in it"
    score = _best_from_metrics(Path(run_dir))
    if score is None:
        warn(f"{p} is damaged ({why}); the next validation replaces the best checkpoint",
              "restore best.json to keep the best checkpoint")
    else:
        warn(f"{p} is damaged ({why}); using the score {score[0]:g} of the best checkpoint's "
              "validation record in metrics.jsonl")
    return score


def _best_from_metrics(run_dir: Path):
    best = run_dir / "checkpoints" / "best"
    steps = [int(q.name) for q in best.iterdir() if q.name.isdigit()] if best.is_dir() else []
    if not steps:
        return None
    for r in reversed(read_metrics(run_dir)):
        if r.get("split") == "val" and _step(r) == max(steps):
            return score_of(r)
    return None


def score_of(record: dict):
    """The score the best checkpoint is chosen by, from a validation record: (the first
    head's accuracy, else minus the loss; minus the loss). Higher is better; equal
    accuracies (a flat validation accuracy) are told apart by the loss. None without a loss."""
    if not _number(record.get("loss")):
        return None
    acc = [v for k, v in record.items() if k.startswith("accuracy_") and _number(v)]
    return (float(acc[0]) if acc else -float(record["loss"]), -float(record["loss"]))


def write_best(run_dir: Path, score, step: int) -> None:
    if _process_index():  # one writer per run: process 0
        return
    write_json(Path(run_dir) / "best.json", {"score": score[0], "loss": -score[1], "step": step})
