"""A run folder during one attempt of training: it starts (fresh or restored), records each
epoch, validates and keeps the best checkpoint, writes `latest` when due, and finishes with
the test score and the summary record. The loop calls these by name and touches no file."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from archspec.engine import ema as E
from archspec.engine.ema import evaluated
from archspec.engine.epoch import CheckpointPolicy
from archspec.engine.measure import KeptSplit, evaluate, in_head_order
from archspec.engine.step import init_state, make_eval_step, shardings
from archspec.errors import ArchspecError, RunFailed
from archspec.runs import checkpoint as ckpt
from archspec.runs.checkpoint import test_weights
from archspec.runs.records import MetricsLog, read_best, score_of, write_best


@dataclass(frozen=True)
class Position:
    """Where in the data the next step starts: batch `batch` of epoch `epoch` (0-based)."""

    epoch: int = 0
    batch: int = 0

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}


@dataclass
class Result:
    run_dir: Path
    state: object
    history: list = field(default_factory=list)
    test: dict | None = None
    test_checkpoint: tuple[str, int] | None = None  # ("best" or "latest", step) test scored
    seconds: float = 0.0
    examples_per_s: float = 0.0
    stopped: bool = False
    outcome: str = "finished"
    pruned: str | None = None      # why the run was stopped early by fit's on_epoch


@dataclass
class Epoch:
    """One epoch as trained: which, from which batch, and what it reached."""

    index: int          # 0-based
    skip: int           # batches skipped at its start (a resumed epoch)
    step: int           # the step count after it
    totals: object      # EpochTotals
    seconds: float

    @property
    def first_step(self) -> int:
        """The step count the epoch started from."""
        return self.step - (self.totals.last + 1 - self.skip)

    def complete(self, steps_per_epoch: int) -> bool:
        return self.totals.last + 1 >= steps_per_epoch

    def next_position(self, steps_per_epoch: int) -> Position:
        if self.complete(steps_per_epoch):
            return Position(self.index + 1, 0)
        return Position(self.index, self.totals.last + 1)


class Run:
    """The files of one attempt: metrics.jsonl (and TensorBoard), best.json, checkpoints."""

    def __init__(self, setup, run_dir: Path, attempt: int, reporter):
        self.setup, self.dir, self.attempt, self.reporter = setup, run_dir, attempt, reporter
        self.log = MetricsLog(run_dir, warn=reporter.warning)
        self.store = ckpt.Checkpoints(run_dir, setup.exp.checkpoint.keep)
        self.saver = CheckpointPolicy(self.store, setup.exp.checkpoint)
        self.eval_step = make_eval_step(setup.model, setup.heads, setup.mesh,
                                        setup.dataset.norm_stats, setup.exp.eval_flip)
        self.best, self.trained, self.started = None, 0, time.perf_counter()
        self.val = KeptSplit()  # the val batches, copied to the devices once

    def start(self, seed: int, resume: bool):
        """(state on the devices, Position): a new state, or the latest checkpoint's."""
        s = self.setup
        state = init_state(s.model, s.graph, s.tx, seed, s.dataset.example(),
                           ema=s.ema is not None)
        position = Position()
        if not resume and s.init_weights is not None:  # a new attempt starts from `init:`
            state = _initialised(state, s)
            if self.attempt == 0:
                self.reporter.note(s.init_weights.report.line())
                self.log.text("init", s.init_weights.report.line())
        if not resume and self.attempt == 0:
            self.log.text("architecture", s.arch_text)
        if resume:
            self.best = read_best(self.dir, self.reporter.warning)
            state, pos = ckpt.restore(self.dir, state, warn=self.reporter.training_warning)
            position = Position(pos["epoch"], pos["batch"])
            self.reporter.resumed(int(state.step))
            self.log.truncate_after(int(state.step))
        self.started = time.perf_counter()
        return jax.device_put(state, shardings(s.mesh)[1]), position

    def record_train(self, epoch: Epoch, health_summary: dict) -> dict:
        """The epoch's train record (metrics.jsonl and the per-step learning rates)."""
        s, totals = self.setup, epoch.totals
        self.trained += totals.seen
        train = in_head_order({k: v / max(totals.seen, 1) for k, v in totals.sums.items()},
                              s.heads)
        first = epoch.first_step
        self.log.per_step("train/lr_per_step", _lrs(s.lr_fn, first, epoch.step), first + 1)
        rec = {"step": epoch.step, "epoch": epoch.index + 1, "split": "train",
               "attempt": self.attempt, "lr": float(s.lr_fn(epoch.step - 1)),
               "seconds": epoch.seconds, "examples_per_s": totals.seen / epoch.seconds,
               **_clean(train), **health_summary}
        if epoch.skip or not epoch.complete(s.steps_per_epoch):  # part of an epoch only
            rec["partial"] = True
        self.log.log(rec)
        return rec

    def validate(self, state, epoch: Epoch, position: Position) -> dict | None:
        """Val metrics (None when the run does not validate, or not this epoch: see
        `eval_every`); a new best is checkpointed (now, or once due: CheckpointPolicy). A
        run that keeps an average of its weights is validated with the average."""
        s = self.setup
        if "val" not in s.exp.eval_splits or not len(s.dataset.val.x):
            return None
        due = (epoch.index + 1) % s.exp.eval_every == 0 or epoch.step >= s.total_steps
        if not due:
            return None
        self.reporter.evaluating("val", len(s.dataset.val.x))
        val, _ = evaluate(s, evaluated(state), s.dataset.val, self.eval_step,
                          progress=self.reporter.eval_progress, outputs=False, kept=self.val)
        self.log.log({"step": epoch.step, "epoch": epoch.index + 1, "split": "val",
                      **_clean(val)})
        score = score_of(_clean(val))  # ties of accuracy: the lower loss is better
        if self.best is None or score > self.best:
            self.best = score
            # best.json names the best checkpoint only once it is on disk
            self.saver.best(state, position.as_dict(),
                            then=lambda s=score, k=epoch.step: write_best(self.dir, s, k))
        return val

    def checkpoint_if_due(self, state, step: int, position: Position, stopping: bool) -> None:
        """`latest` by the checkpoint policy, at the end of training and on a stop."""
        if self.saver.due(step) or step >= self.setup.total_steps or stopping:
            self.saver.save(state, position.as_dict())
        self.saver.write_held()  # when due; close() writes what is still held at the end

    def close(self) -> None:
        """Write the best held back (unless a write failed), then finish every write."""
        try:
            if not self.store.failed:
                self.saver.write_held(force=True)
        finally:
            self.store.close()

    def fail(self, exc: ArchspecError, step: int, trained: bool) -> ArchspecError:
        """An error while the steps run (a streamed image truncated or replaced): the run is
        marked failed in metrics.jsonl and train.log, never left "running/killed". Returns
        the error to raise: once steps have trained, a failed run (exit 1), not bad input."""
        text = "\n".join(e.render_plain() for e in exc.located())
        self.log.log({"step": step, "split": "summary", "attempt": self.attempt,
                      "status": "failed", "error": text[:2000]})
        self.reporter.failed(text)
        self.log.close()
        return RunFailed(exc) if trained else exc

    def finish(self, result: Result, state, step: int) -> Result:
        """Score the test split (best checkpoint, or latest when the run never validated)
        unless stopped, and write the summary record."""
        s = self.setup
        result.seconds = time.perf_counter() - self.started
        result.examples_per_s = self.trained / max(result.seconds, 1e-9)
        result.state = state
        if not (result.stopped or result.pruned) and "test" in s.exp.eval_splits \
                and len(s.dataset.test.x):
            scored, which, at = test_weights(self.dir, state, self.reporter.training_warning)
            scored = evaluated(scored)  # the averaged weights, when the run keeps them
            result.test_checkpoint = (which, at)
            self.reporter.evaluating("test", len(s.dataset.test.x))
            result.test, _ = evaluate(s, scored, s.dataset.test, self.eval_step,
                                      progress=self.reporter.eval_progress)
            self.log.log({"step": step, "split": "test", "checkpoint": which,
                          "checkpoint_step": at, **_clean(result.test)})
        result.outcome = "stopped" if result.stopped else "pruned" if result.pruned else "finished"
        self.log.log({"step": step, "split": "summary", "attempt": self.attempt,
                      "seconds": result.seconds, "examples_per_s": result.examples_per_s,
                      "status": result.outcome,
                      **({"pruned_because": result.pruned} if result.pruned else {})})
        self.log.close()
        return result


def _lrs(lr_fn, first: int, last: int) -> np.ndarray:
    """The learning rate of steps first+1..last (a constant schedule gives one scalar)."""
    idx = np.arange(first, last)
    return np.broadcast_to(np.asarray(lr_fn(idx)), idx.shape)


def _clean(metrics: dict) -> dict:
    return {k.replace("/", "_"): float(v) for k, v in metrics.items()}


def main_accuracy(record: dict):
    return next((v for k, v in record.items() if k.startswith("accuracy")), None)


def _initialised(state, setup):
    """A fresh state whose variables are `init:`'s where the file has them; the optimiser
    state and the weights' average start from those values."""
    params, stats = setup.init_weights.apply(state.params, state.batch_stats)
    return state.replace(params=params, batch_stats=stats, opt_state=setup.tx.init(params),
                         ema=E.start(params, stats) if state.ema is not None else None)
