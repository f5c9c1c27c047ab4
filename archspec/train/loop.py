"""The training loop: epochs of jitted steps, evaluation, logging, checkpoints, resume.
Read top to bottom: `prepare` builds everything, `fit` runs it."""
from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import Mesh

from archspec.data import DataError, Dataset, load_dataset, steps_per_epoch
from archspec.data.lazy import is_lazy
from archspec.errors import ArchspecError, SpecError, SpecErrors
from archspec.spec.graph import Graph
from archspec.train import checkpoint as ckpt
from archspec.train.health import AttemptFailed, Monitor
from archspec.train.heads import chance_rate, head_losses
from archspec.train.config import Experiment, locate_data_error
from archspec.train.measure import evaluate, in_head_order, test_weights
from archspec.train.optim import make_optimizer
from archspec.train.reporter import NullReporter, Reporter
from archspec.train.runs import (MetricsLog, RunError, new_run_dir, read_attempts, read_best,
                                 write_attempts, write_best, write_setup)
from archspec.train.epoch import CheckpointPolicy, EpochRunner, steps_per_execution
from archspec.train.step import (HeadLoss, init_state, make_eval_step, make_mesh,
                                 make_multi_step, shardings)


# How `archspec train` ends: 0 only when the run finished. 2 (bad input) and 1 (run-folder or
# checkpoint problem) come from the errors raised before training.
EXIT_CODES = {"finished": 0, "diverged": 3, "collapsed": 4, "stalled": 5, "stopped": 130}


class TrainError(ArchspecError):
    """A run that cannot start as configured (exit 2); `pos` names the config line."""


@dataclass(frozen=True)
class Setup:
    """Everything one attempt trains with. A restart builds a new one (`with_lr_factor`)."""

    exp: Experiment
    graph: Graph
    dataset: Dataset
    model: nn.Module
    heads: list[HeadLoss]
    tx: optax.GradientTransformation
    lr_fn: optax.Schedule
    mesh: Mesh
    total_steps: int
    steps_per_epoch: int
    config: dict
    arch_text: str
    chance: float | None = None      # majority-class rate of the train split
    experiment_file: str | None = None  # fingerprinted, so a resume names a later edit
    augment: Callable | None = None  # (key, x, y) -> (x, y): the experiment's `augment:`
    smoke: bool = False              # a few steps on a little data: `expect:` is not judged

    def with_lr_factor(self, factor: float) -> "Setup":
        """The same run with its learning rate scaled (a restart after a failed attempt)."""
        opt = self.exp.optimizer
        tx, lr_fn = make_optimizer(opt.model_copy(update={"lr": opt.lr * factor}),
                                   self.total_steps)
        return replace(self, tx=tx, lr_fn=lr_fn)


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


def prepare(exp: Experiment, graph: Graph, arch_text: str, config: dict, smoke: bool = False,
            root=None, experiment_file: str | None = None) -> Setup:
    """Everything a run needs, checked before step 1. `root` is the experiment's YAML tree:
    errors that involve the data point at its lines (absent on resume)."""
    from archspec.model.build import build_model

    if len(graph.inputs) != 1:
        raise TrainError("training reads one input; this architecture has "
                         f"{len(graph.inputs)} ({', '.join(graph.inputs)})",
                         "multi-input data sets are not supported yet")
    (inp,) = graph.inputs.values()
    try:
        dataset = load_dataset(exp.data, tuple(inp.shape), seed=exp.seed)
    except DataError as exc:
        locate_data_error(exc, root)
        raise
    for node in graph.layers:  # ids beyond the table: NaN vectors (embedding), zeros (one_hot)
        size = {"embedding": "vocabulary", "one_hot": "classes"}.get(node.kind)
        if size and dataset.vocabulary and getattr(node.opts, size) < len(dataset.vocabulary):
            raise TrainError(f"{node.id} has {size} {getattr(node.opts, size)} but the data "
                             f"has {len(dataset.vocabulary)} token ids",
                             f"set {size}: {len(dataset.vocabulary)}, or the data's "
                             f"vocabulary_size: {getattr(node.opts, size)}", pos=node.pos)
    mesh = make_mesh()
    n_dev = mesh.devices.size
    if exp.batch_size % n_dev:
        raise TrainError(f"batch size {exp.batch_size} does not divide across {n_dev} devices",
                         f"use a multiple of {n_dev}, e.g. --set batch_size="
                         f"{max(n_dev, exp.batch_size // n_dev * n_dev)}")
    n_train = len(dataset.train.x)
    if exp.batch_size > n_train:  # every step would be one padded copy of the whole split
        raise SpecErrors([SpecError(
            f"batch size {exp.batch_size} is larger than the training split "
            f"({n_train} examples)", _pos(root, "batch_size"), "batch_size",
            expected=f"at most {n_train}", found=str(exp.batch_size),
            hint=f"--set batch_size={_fit_batch(n_train, n_dev)}, or use more data "
                 "(data.limit, data.val_fraction, data.test_fraction)")])
    spe = steps_per_epoch(n_train, exp.batch_size, False)
    total = exp.steps if exp.steps is not None else exp.epochs * spe
    if smoke:
        total = min(total, 3)
    dtype = jnp.bfloat16 if exp.precision == "bf16" else None
    model = build_model(graph, compute_dtype=dtype)
    tx, lr_fn = make_optimizer(exp.optimizer, total)
    heads = head_losses(exp, graph, dataset, _pos(root, "data"), _loss_positions(root))
    return Setup(exp, graph, dataset, model, heads, tx, lr_fn, mesh, total, spe, config,
                 arch_text, chance_rate(dataset), experiment_file, _augment(exp, dataset, root),
                 smoke)


def _augment(exp: Experiment, dataset: Dataset, root):
    """The experiment's augmentation as one function, after checking each op fits the data."""
    from archspec.train.augment import check_steps, make_augment

    problems = check_steps(exp.augment, dataset.input_shape, dataset.task,
                           tuple(dataset.train.y.shape[1:]))
    if problems:
        entries = root.get("augment") if root is not None else None
        raise SpecErrors([SpecError(
            f"{name} cannot apply to this data: {why}",
            _item_pos(entries, i) or _pos(root, "augment"),
            f"augment[{i}]", hint="remove the op, or use data it fits")
            for i, name, why in problems])
    return make_augment([s.op for s in exp.augment], dataset.norm_stats, dataset.num_classes)


def _item_pos(items, i: int):
    positions = getattr(items, "item_pos", None)
    return positions[i] if positions and i < len(positions) else None


def _pos(root, key: str):
    return root.val_pos.get(key) if root is not None else None


def _loss_positions(root) -> dict:
    loss = root.get("loss") if root is not None else None
    return dict(loss.key_pos) if hasattr(loss, "key_pos") else {}


def _fit_batch(n_train: int, n_dev: int) -> int:
    """The largest batch that fits the split and divides across the devices."""
    return max(n_dev, n_train // n_dev * n_dev)


class _StopFlag:
    """SIGINT/SIGTERM ask for a clean stop at the next step boundary."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.stop:  # second signal: stop now
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(setup: Setup, reporter: Reporter | None = None, run_dir: Path | None = None,
        resume: bool = False) -> Result:
    """Train, restarting with a new seed after a collapse or divergence while restarts are
    left (health.restarts). Every attempt's record stays in the run folder; what a person
    should see goes to `reporter`."""
    exp = setup.exp
    reporter = reporter or NullReporter()
    if run_dir is None:
        run_dir = new_run_dir(exp.output, exp.name)
        write_setup(run_dir, setup.config, setup.arch_text, exp.seed,
                    experiment_file=setup.experiment_file)
    attempts = read_attempts(run_dir)
    attempt = len(attempts)
    reporter.run_start(setup, run_dir, resume)
    while True:
        seed = exp.seed + 1000 * attempt
        if attempt:
            setup = setup.with_lr_factor(exp.health.restart_lr_factor ** attempt)
        try:
            result = _attempt(setup, run_dir, seed, attempt, resume, reporter)
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
                         "outcome": "stopped" if result.stopped else "finished",
                         "step": int(jax.device_get(result.state.step))})
        write_attempts(run_dir, attempts)
        reporter.finish(result, setup)
        return result


def _attempt(setup: Setup, run_dir: Path, seed: int, attempt: int, resume: bool,
             reporter: Reporter) -> Result:
    exp = setup.exp
    _, repl = shardings(setup.mesh)
    state = init_state(setup.model, setup.graph, setup.tx, seed, setup.dataset.example())
    start_epoch, start_batch = 0, 0
    log = MetricsLog(run_dir, warn=reporter.warning)
    if not resume and attempt == 0:
        log.text("architecture", setup.arch_text)
    best = read_best(run_dir, reporter.warning) if resume else None
    if resume:
        state, pos = ckpt.restore(run_dir, state, warn=reporter.training_warning)
        start_epoch, start_batch = pos["epoch"], pos["batch"]
        log.truncate_after(int(state.step))
    state = jax.device_put(state, repl)
    store = ckpt.Checkpoints(run_dir, exp.checkpoint.keep)
    saver = CheckpointPolicy(store, exp.checkpoint)
    # chunks balanced over an epoch, or over the whole run when it is shorter (a smoke run)
    k = steps_per_execution(exp.steps_per_execution, setup.graph, exp.batch_size,
                            min(setup.steps_per_epoch, setup.total_steps),
                            jax.devices()[0].platform,
                            is_lazy(setup.dataset.train.x))
    monitor = Monitor(exp.health, [n.id for n in setup.graph.layers if n.params],
                      reporter.training_warning)
    stats = setup.dataset.norm_stats
    runner = EpochRunner(setup, make_multi_step(setup.model, setup.heads, setup.tx, setup.mesh,
                                                setup.augment, stats), monitor, reporter, k)
    eval_step = make_eval_step(setup.model, setup.heads, setup.mesh, stats)
    result = Result(run_dir, state)
    step = int(state.step)
    t_start, trained = time.perf_counter(), 0
    epochs = -(-setup.total_steps // setup.steps_per_epoch)
    reporter.compiling(setup)
    try:
        with _StopFlag() as flag:
            for epoch in range(start_epoch, epochs):
                if step >= setup.total_steps:
                    break
                skip = start_batch if epoch == start_epoch else 0
                t0 = time.perf_counter()
                state, step, totals = runner.run(state, epoch, skip, step,
                                                 lambda: flag.stop, saver)
                b, n_seen = totals.last, totals.seen
                trained += n_seen
                train = in_head_order({k: v / max(n_seen, 1) for k, v in totals.sums.items()},
                                      setup.heads)
                finished_epoch = b + 1 >= setup.steps_per_epoch
                pos = ({"epoch": epoch + 1, "batch": 0} if finished_epoch
                       else {"epoch": epoch, "batch": b + 1})
                seconds = time.perf_counter() - t0
                first = step - (b + 1 - skip)  # the step count this epoch started from
                log.per_step("train/lr_per_step", _lrs(setup.lr_fn, first, step), first + 1)
                rec = {"step": step, "epoch": epoch + 1, "split": "train", "attempt": attempt,
                       "lr": float(setup.lr_fn(step - 1)), "seconds": seconds,
                       "examples_per_s": n_seen / seconds, **_clean(train),
                       **monitor.epoch_summary()}
                if skip or not finished_epoch:  # metrics of part of an epoch only
                    rec["partial"] = True
                log.log(rec)
                row = {"train": rec}
                if "val" in exp.eval_splits and len(setup.dataset.val.x):
                    reporter.evaluating("val", len(setup.dataset.val.x))
                    val, _ = evaluate(setup, state, setup.dataset.val, eval_step,
                                      progress=reporter.eval_progress, outputs=False)
                    log.log({"step": step, "epoch": epoch + 1, "split": "val", **_clean(val)})
                    row["val"] = val
                    score = _score(val)
                    if best is None or score > best:
                        best = score
                        # best.json names the best checkpoint only once it is on disk
                        saver.save(state, pos, "best",
                                   then=lambda s=best, k=step: write_best(run_dir, s, k))
                if saver.due(step) or step >= setup.total_steps or flag.stop:
                    saver.save(state, pos)
                result.history.append(row)
                reporter.epoch_end(epoch + 1, epochs, row)
                if finished_epoch:
                    monitor.check_chance(step, _main_accuracy(train), setup.chance)
                if flag.stop:
                    result.stopped = True
                    break
    except KeyboardInterrupt:
        result.stopped = True
    except BaseException:
        log.close()
        raise
    finally:
        runner.close()
        store.close()
        reporter.attempt_end()
    result.seconds = time.perf_counter() - t_start
    result.examples_per_s = trained / max(result.seconds, 1e-9)
    result.state = state
    if not result.stopped and "test" in exp.eval_splits and len(setup.dataset.test.x):
        scored, which, at = test_weights(run_dir, state, reporter.training_warning)
        result.test_checkpoint = (which, at)
        reporter.evaluating("test", len(setup.dataset.test.x))
        result.test, _ = evaluate(setup, scored, setup.dataset.test, eval_step,
                                  progress=reporter.eval_progress)
        log.log({"step": step, "split": "test", "checkpoint": which, "checkpoint_step": at,
                 **_clean(result.test)})
    result.outcome = "stopped" if result.stopped else "finished"
    log.log({"step": step, "split": "summary", "attempt": attempt, "seconds": result.seconds,
             "examples_per_s": result.examples_per_s, "status": result.outcome})
    log.close()
    return result


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


def _lrs(lr_fn, first: int, last: int) -> np.ndarray:
    """The learning rate of steps first+1..last (a constant schedule gives one scalar)."""
    idx = np.arange(first, last)
    return np.broadcast_to(np.asarray(lr_fn(idx)), idx.shape)


def _clean(metrics: dict) -> dict:
    return {k.replace("/", "_"): float(v) for k, v in metrics.items()}


def _main_accuracy(metrics: dict):
    return next((v for k, v in metrics.items() if k.startswith("accuracy")), None)


def _score(metrics: dict) -> float:
    acc = [v for k, v in metrics.items() if k.startswith("accuracy/")]
    return acc[0] if acc else -metrics["loss"]


__all__ = ["Setup", "Result", "prepare", "fit", "TrainError", "RunError"]
