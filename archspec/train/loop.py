"""The training loop. `fit` runs attempts (a restart after a collapse or divergence gets a
new seed and a lower learning rate); `_attempt` is one pass over the epochs, reading like
any JAX training loop: the run folder's work is `Run`'s (train/run.py), an epoch's chunks
are `EpochRunner`'s (engine/epoch.py), the set-up was checked by `prepare` (train/setup.py)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from archspec.engine.epoch import EpochRunner, steps_per_execution
from archspec.engine.health import AttemptFailed, Monitor
from archspec.engine.reporter import NullReporter, Reporter
from archspec.engine.step import make_multi_step
from archspec.data import DataError
from archspec.data.lazy import is_lazy
from archspec.runs.files import refuse_links
from archspec.runs.folder import new_run_dir
from archspec.runs.lock import owning
from archspec.runs.records import MetricsLog, read_attempts, write_attempts
from archspec.runs.sources import write_setup
from archspec.train.run import Epoch, Result, Run, main_accuracy
from archspec.train.setup import Setup
from archspec.train.stop import StopFlag

OnEpoch = Callable[[int, int, dict], "str | None"]  # (epoch, epochs, val) -> reason to stop

# How `archspec train` ends: 0 only when the run finished. 2 (bad input) and 1 (run-folder or
# checkpoint problem) come from the errors raised before training.
EXIT_CODES = {"finished": 0, "diverged": 3, "collapsed": 4, "stalled": 5, "stopped": 130}


def fit(setup: Setup, reporter: Reporter | None = None, run_dir: Path | None = None,
        resume: bool = False, wait: bool = False, on_epoch: OnEpoch | None = None) -> Result:
    """Train, restarting with a new seed after a collapse or divergence while restarts are
    left (health.restarts). The process owns the run folder while it trains (runs/lock.py:
    a second process on it refuses, or waits with `wait`); a new folder is owned from its
    creation, before anything is written into it. Every attempt's record stays in the run
    folder; what a person should see goes to `reporter`. `on_epoch(epoch, val)` hears every
    validation record and may return a reason to stop the run there: its status is then
    `pruned`."""
    reporter = reporter or NullReporter()
    if run_dir is None:
        run_dir = new_run_dir(setup.exp.output, setup.exp.name)
        with owning(run_dir):
            write_setup(run_dir, setup.config, setup.arch_text, setup.exp.seed,
                        experiment_file=setup.experiment_file)
            return _attempts(setup, reporter, run_dir, resume, on_epoch)
    with owning(run_dir, wait, reporter.training_warning):
        refuse_links(run_dir)  # before anything is written (train.log included)
        return _attempts(setup, reporter, run_dir, resume, on_epoch)


def _attempts(setup: Setup, reporter: Reporter, run_dir: Path, resume: bool,
              on_epoch: OnEpoch | None) -> Result:
    exp = setup.exp
    attempts = read_attempts(run_dir)
    attempt = len(attempts)
    reporter.run_start(setup, run_dir, resume)
    while True:
        seed = exp.seed + 1000 * attempt
        if attempt:
            setup = setup.with_lr_factor(exp.health.restart_lr_factor ** attempt)
        try:
            result = _attempt(setup, run_dir, seed, attempt, resume, reporter, on_epoch)
        except AttemptFailed as failed:
            record = {"attempt": attempt, "seed": seed, "outcome": failed.outcome,
                      "step": failed.step, "detail": failed.detail}
            attempts.append(record)
            write_attempts(run_dir, attempts)
            _archive_checkpoints(run_dir, attempt)
            reporter.attempt_failed(failed.outcome, failed.step, failed.detail, failed.hint)
            if attempt >= exp.health.restarts:
                result = Result(run_dir, None, stopped=True, outcome=failed.outcome)
                MetricsLog(run_dir, tensorboard=False).log(
                    {"step": failed.step, "split": "summary", "attempt": attempt,
                     "status": failed.outcome})
                reporter.finish(result, setup)
                return result
            attempt += 1
            resume = False
            reporter.restarting(attempt + 1, exp.health.restarts + 1, exp.seed + 1000 * attempt)
            continue
        attempts.append({"attempt": attempt, "seed": seed,
                         "outcome": result.outcome,
                         "step": int(jax.device_get(result.state.step))})
        write_attempts(run_dir, attempts)
        reporter.finish(result, setup)
        return result


def _attempt(setup: Setup, run_dir: Path, seed: int, attempt: int, resume: bool,
             reporter: Reporter, on_epoch: OnEpoch | None = None) -> Result:
    run = Run(setup, run_dir, attempt, reporter)
    at = [None if resume else 0]  # the step a stop before the first step records

    def early_stop():  # nothing trained in this attempt yet: the summary, then exit 130
        if at[0] is not None:
            run.log.log({"step": at[0], "split": "summary", "attempt": attempt,
                         "status": "stopped"})

    with StopFlag(early_stop) as stop:  # from here: initialising and restoring compile too
        state, start = run.start(seed, resume)
        at[0] = int(state.step)
        monitor, runner = _machinery(setup, reporter)
        result, step = Result(run_dir, state), int(state.step)
        reporter.compiling(setup)
        try:
            for index in range(start.epoch, setup.epochs):
                if step >= setup.total_steps:
                    break
                skip, t0 = start.batch if index == start.epoch else 0, time.perf_counter()
                state, step, totals = runner.run(state, index, skip, step, stop.check,
                                                 run.saver)
                epoch = Epoch(index, skip, step, totals, time.perf_counter() - t0)
                position = epoch.next_position(setup.steps_per_epoch)
                row = {"train": run.record_train(epoch, monitor.epoch_summary())}
                if (val := run.validate(state, epoch, position)) is not None:
                    row["val"] = val
                    result.pruned = _verdict(on_epoch, index + 1, setup.epochs, val)
                run.checkpoint_if_due(state, step, position, stop.requested or bool(result.pruned))
                result.history.append(row)
                reporter.epoch_end(index + 1, setup.epochs, row)
                if result.pruned:   # the caller's verdict stands: not judged stalled after it
                    break
                if epoch.complete(setup.steps_per_epoch):
                    monitor.check_chance(step, main_accuracy(row["train"]), setup.chance,
                                         row["train"].get("loss"))
                if stop.requested:
                    result.stopped = True
                    break
        except KeyboardInterrupt:
            result.stopped = True
        except DataError as exc:  # raised by a batch (a streamed file gone bad)
            raise run.fail(exc, max(step, runner.step), stop.stepped) from None
        except BaseException:
            run.log.close()
            raise
        finally:
            runner.close()
            run.close()
            reporter.attempt_end()
    return run.finish(result, state, step)


def _machinery(setup: Setup, reporter: Reporter) -> tuple[Monitor, EpochRunner]:
    """The attempt's health monitor and the runner of its epochs (the compiled step)."""
    monitor = Monitor(setup.exp.health, [n.id for n in setup.graph.layers if n.params],
                      reporter.training_warning)
    step = make_multi_step(setup.model, setup.heads, setup.tx, setup.mesh, setup.augment,
                           setup.dataset.norm_stats, setup.ema)
    return monitor, EpochRunner(setup, step, monitor, reporter, _chunk_size(setup))


def _verdict(on_epoch: OnEpoch | None, epoch: int, epochs: int, val: dict) -> str | None:
    """The caller's reason to stop after this validation, if any: process 0 asks (a trial
    hears one report per epoch), and every process stops with it."""
    if on_epoch is None:
        return None
    why = on_epoch(epoch, epochs, val) if jax.process_index() == 0 else None
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        stop = int(multihost_utils.broadcast_one_to_all(np.int32(why is not None)))
        why = why or ("stopped by process 0" if stop else None)
    return why


def _chunk_size(setup: Setup) -> int:
    """Steps per dispatch: chunks balanced over an epoch, or over the whole run when it is
    shorter (a smoke run)."""
    exp = setup.exp
    return steps_per_execution(exp.steps_per_execution, setup.graph, exp.batch_size,
                               min(setup.steps_per_epoch, setup.total_steps),
                               jax.devices()[0].platform, is_lazy(setup.dataset.train.x))


def _archive_checkpoints(run_dir: Path, attempt: int) -> None:
    """A failed attempt's checkpoints move aside so the next attempt starts clean."""
    src = run_dir / "checkpoints"
    if src.exists():
        dst = run_dir / "attempts" / f"attempt{attempt + 1}"
        dst.mkdir(parents=True, exist_ok=True)
        src.rename(dst / "checkpoints")
    for name in ("best.json",):
        if (run_dir / name).exists():
            (run_dir / name).unlink()


__all__ = ["EXIT_CODES", "StopFlag", "fit"]
