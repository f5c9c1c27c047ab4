"""The training loop: epochs of jitted steps, evaluation, logging, checkpoints, resume.
Read top to bottom: `prepare` builds everything, `fit` runs it."""
from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from archspec.data import batches, load_dataset, prefetch, steps_per_epoch
from archspec.train import checkpoint as ckpt
from archspec.train.health import AttemptFailed, Monitor
from archspec.train.losses import DEFAULT_FOR_OUTPUT
from archspec.train.optim import make_optimizer
from archspec.train.runs import MetricsLog, RunError, new_run_dir, write_setup
from archspec.train.step import (HeadLoss, fetch, init_state, make_eval_step, make_mesh,
                                 make_train_step, pad_batch, put_batch, shardings)


class TrainError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@dataclass
class Setup:
    exp: object
    graph: object
    dataset: object
    model: object
    heads: list
    tx: object
    lr_fn: object
    mesh: object
    total_steps: int
    steps_per_epoch: int
    config: dict
    arch_text: str


@dataclass
class Result:
    run_dir: Path
    state: object
    history: list = field(default_factory=list)
    test: dict | None = None
    seconds: float = 0.0
    examples_per_s: float = 0.0
    stopped: bool = False
    outcome: str = "finished"


def head_losses(exp, graph, dataset) -> list[HeadLoss]:
    out = []
    for name, head in graph.heads.items():
        spec = exp.loss.get(name)
        kind = (spec if isinstance(spec, str) else spec.kind) if spec else DEFAULT_FOR_OUTPUT[head.output]
        weight = spec.weight if spec is not None and not isinstance(spec, str) and spec.weight is not None else head.loss_weight
        if kind == "categorical_crossentropy" and dataset.num_classes and head.shape:
            if head.shape[-1] < dataset.num_classes:
                raise TrainError(f"head '{name}' has {head.shape[-1]} outputs but the data has "
                                 f"{dataset.num_classes} classes",
                                 f"give the last dense layer units: {dataset.num_classes}")
        if kind == "mse" and dataset.task == "classification":
            raise TrainError(f"head '{name}' is a regression head ({head.output}) but "
                             f"'{dataset.name}' is a classification set",
                             "use `output: softmax` on the head or a regression data set")
        out.append(HeadLoss(name, kind, head.output, float(weight)))
    unknown = set(exp.loss) - set(graph.heads)
    if unknown:
        raise TrainError(f"loss names unknown head(s): {', '.join(sorted(unknown))}",
                         f"heads of this architecture: {', '.join(graph.heads)}")
    return out


def prepare(exp, graph, arch_text: str, config: dict, smoke: bool = False) -> Setup:
    from archspec.build import build_model

    if len(graph.inputs) != 1:
        raise TrainError("training reads one input; this architecture has "
                         f"{len(graph.inputs)} ({', '.join(graph.inputs)})",
                         "multi-input data sets are not supported yet")
    (inp,) = graph.inputs.values()
    dataset = load_dataset(exp.data, tuple(inp.shape), seed=exp.seed)
    for node in graph.layers:  # ids beyond the table: NaN vectors (embedding), zeros (one_hot)
        size = {"embedding": "vocabulary", "one_hot": "classes"}.get(node.kind)
        if size and dataset.vocabulary and getattr(node.opts, size) < len(dataset.vocabulary):
            raise TrainError(f"{node.id} has {size} {getattr(node.opts, size)} but the data "
                             f"has {len(dataset.vocabulary)} token ids",
                             f"set {size}: {len(dataset.vocabulary)}, or the data's "
                             f"vocabulary_size: {getattr(node.opts, size)}")
    mesh = make_mesh()
    n_dev = mesh.devices.size
    if exp.batch_size % n_dev:
        raise TrainError(f"batch size {exp.batch_size} does not divide across {n_dev} devices",
                         f"use a multiple of {n_dev}, e.g. --set batch_size="
                         f"{max(n_dev, exp.batch_size // n_dev * n_dev)}")
    spe = steps_per_epoch(len(dataset.train.x), exp.batch_size, False)
    total = exp.steps if exp.steps is not None else exp.epochs * spe
    if smoke:
        total = min(total, 3)
    dtype = jnp.bfloat16 if exp.precision == "bf16" else None
    model = build_model(graph, compute_dtype=dtype)
    tx, lr_fn = make_optimizer(exp.optimizer, total)
    return Setup(exp, graph, dataset, model, head_losses(exp, graph, dataset), tx, lr_fn, mesh,
                 total, spe, config, arch_text)


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


def evaluate(setup: Setup, state, split, eval_step=None, batch_size=None):
    """Loss and accuracy over a whole split (every example exactly once)."""
    eval_step = eval_step or make_eval_step(setup.model, setup.heads, setup.mesh)
    bs = batch_size or setup.exp.eval_batch_size or setup.exp.batch_size
    data_sh, _ = shardings(setup.mesh)
    sums, n = {}, 0
    outputs = []
    for x, y in batches(split, bs, shuffle=False, seed=0, epoch=0):
        real = len(x)
        xb, yb, w = pad_batch(x, y, bs)
        metrics, out = eval_step(state, *put_batch((xb, yb, w), data_sh))
        metrics = jax.device_get(metrics)
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v) * real
        n += real
        outputs.append({k: np.asarray(v)[:real] for k, v in fetch(out).items()})
    result = {k: v / max(n, 1) for k, v in sums.items()}
    result["examples"] = n
    return result, {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]} if outputs else {}


def fit(setup: Setup, run_dir: Path | None = None, resume: bool = False, console=None,
        progress: bool = True) -> Result:
    """Train, restarting with a new seed after a collapse or divergence while restarts are
    left (health.restarts). Every attempt's record stays in the run folder."""
    from archspec.render import console as default_console

    exp = setup.exp
    console = console or default_console
    if run_dir is None:
        run_dir = new_run_dir(exp.output, exp.name)
        write_setup(run_dir, setup.config, setup.arch_text, exp.seed)
    attempts = _read_attempts(run_dir)
    attempt = len(attempts)
    while True:
        seed = exp.seed + 1000 * attempt
        if attempt:
            factor = exp.health.restart_lr_factor ** attempt
            setup.tx, setup.lr_fn = make_optimizer(
                exp.optimizer.model_copy(update={"lr": exp.optimizer.lr * factor}),
                setup.total_steps)
        try:
            result = _attempt(setup, run_dir, seed, attempt, resume, console, progress)
        except AttemptFailed as failed:
            record = {"attempt": attempt, "seed": seed, "outcome": failed.outcome,
                      "step": failed.step, "detail": failed.detail}
            attempts.append(record)
            _write_attempts(run_dir, attempts)
            _archive_checkpoints(run_dir, attempt)
            console.print(
                f"[bold red]{failed.outcome}[/bold red] at step {failed.step}: {failed.detail}\n"
                f"    hint: {failed.hint}")
            if attempt >= exp.health.restarts:
                result = Result(run_dir, None, stopped=True, outcome=failed.outcome)
                MetricsLog(run_dir, tensorboard=False).log(
                    {"step": failed.step, "split": "summary", "attempt": attempt,
                     "status": failed.outcome})
                return result
            attempt += 1
            resume = False
            console.print(
                f"restarting (attempt {attempt + 1} of {exp.health.restarts + 1}) with seed "
                f"{exp.seed + 1000 * attempt}")
            continue
        attempts.append({"attempt": attempt, "seed": seed,
                         "outcome": "stopped" if result.stopped else "finished",
                         "step": int(jax.device_get(result.state.step))})
        _write_attempts(run_dir, attempts)
        return result


def _attempt(setup: Setup, run_dir: Path, seed: int, attempt: int, resume: bool, console,
             progress: bool) -> Result:
    from archspec.train.report import EpochPrinter

    exp = setup.exp
    data_sh, repl = shardings(setup.mesh)
    example = jnp.zeros((1, *setup.dataset.train.x.shape[1:]), setup.dataset.train.x.dtype)
    state = init_state(setup.model, setup.graph, setup.tx, seed, example)
    start_epoch, start_batch = 0, 0
    log = MetricsLog(run_dir)
    best = _read_best(run_dir) if resume else None
    if resume:
        state, pos = ckpt.restore(run_dir, state, warn=lambda m: console.print(
            f"[yellow]warning:[/yellow] {m}"))
        start_epoch, start_batch = pos["epoch"], pos["batch"]
        log.truncate_after(int(state.step))
    state = jax.device_put(state, repl)
    store = ckpt.Checkpoints(run_dir, exp.checkpoint.keep)
    train_step = make_train_step(setup.model, setup.heads, setup.tx, setup.mesh)
    eval_step = make_eval_step(setup.model, setup.heads, setup.mesh)
    printer = EpochPrinter(console, setup, progress)
    monitor = Monitor(exp.health, [n.id for n in setup.graph.layers if n.params],
                      lambda msg: printer.warn(msg))
    result = Result(run_dir, state)
    step = int(state.step)
    t_start, trained = time.perf_counter(), 0
    epochs = -(-setup.total_steps // setup.steps_per_epoch)
    try:
        with _StopFlag() as flag, printer:
            for epoch in range(start_epoch, epochs):
                if step >= setup.total_steps:
                    break
                skip = start_batch if epoch == start_epoch else 0
                t0, sums, n_seen, b = time.perf_counter(), {}, 0, skip - 1
                it = batches(setup.dataset.train, exp.batch_size, shuffle=True, seed=exp.seed,
                             epoch=epoch)
                it = prefetch(_padded(it, exp.batch_size, skip), 2,
                              put=lambda b: (put_batch(b[:3], data_sh), b[3]))
                pending = None
                for b, ((x, y, w), real) in enumerate(it, start=skip):
                    state, metrics, health = train_step(state, x, y, w)
                    step += 1
                    trained += real
                    n_seen += real
                    if pending:  # check the previous step while this one runs
                        monitor.observe(*pending)
                    pending = (step, health)
                    for k, v in metrics.items():
                        sums[k] = sums.get(k, 0.0) + v * real
                    printer.step(step, epoch, metrics, n_seen / (time.perf_counter() - t0))
                    every = exp.checkpoint.every_steps
                    if every and step % every == 0 and b + 1 < setup.steps_per_epoch:
                        monitor.observe(*jax.device_get(pending))
                        pending = None
                        store.save("latest", state, {"epoch": epoch, "batch": b + 1})
                    if flag.stop or step >= setup.total_steps:
                        break
                it.close()
                if pending:
                    monitor.observe(*jax.device_get(pending))
                train = {k: float(v) / max(n_seen, 1) for k, v in jax.device_get(sums).items()}
                finished_epoch = b + 1 >= setup.steps_per_epoch
                pos = ({"epoch": epoch + 1, "batch": 0} if finished_epoch
                       else {"epoch": epoch, "batch": b + 1})
                seconds = time.perf_counter() - t0
                rec = {"step": step, "epoch": epoch + 1, "split": "train", "attempt": attempt,
                       "lr": float(setup.lr_fn(step - 1)), "seconds": seconds,
                       "examples_per_s": n_seen / seconds, **_clean(train),
                       **monitor.epoch_summary()}
                log.log(rec)
                row = {"train": rec}
                if "val" in exp.eval_splits and len(setup.dataset.val.x):
                    val, _ = evaluate(setup, state, setup.dataset.val, eval_step)
                    log.log({"step": step, "epoch": epoch + 1, "split": "val", **_clean(val)})
                    row["val"] = val
                    score = _score(val)
                    if best is None or score > best:
                        best = score
                        store.save("best", state, pos)
                        _write_best(run_dir, best, step)
                store.save("latest", state, pos)
                result.history.append(row)
                printer.epoch(epoch + 1, epochs, row)
                if flag.stop:
                    result.stopped = True
                    break
    except KeyboardInterrupt:
        result.stopped = True
    finally:
        store.close()
        log.close()
    log = MetricsLog(run_dir, tensorboard=False)
    result.seconds = time.perf_counter() - t_start
    result.examples_per_s = trained / max(result.seconds, 1e-9)
    result.state = state
    if not result.stopped and "test" in exp.eval_splits and len(setup.dataset.test.x):
        result.test, _ = evaluate(setup, state, setup.dataset.test, eval_step)
        log.log({"step": step, "split": "test", **_clean(result.test)})
    result.outcome = "stopped" if result.stopped else "finished"
    log.log({"step": step, "split": "summary", "attempt": attempt, "seconds": result.seconds,
             "examples_per_s": result.examples_per_s, "status": result.outcome})
    return result


def _read_attempts(run_dir: Path) -> list:
    p = run_dir / "attempts.json"
    if not p.exists():
        return []
    return [a for a in json.loads(p.read_text()) if a["outcome"] in ("collapsed", "diverged")]


def _write_attempts(run_dir: Path, attempts: list) -> None:
    tmp = run_dir / "attempts.json.tmp"
    tmp.write_text(json.dumps(attempts, indent=2))
    tmp.replace(run_dir / "attempts.json")


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


def _padded(it, size, skip):
    for k, (x, y) in enumerate(it):
        if k < skip:
            continue
        xb, yb, w = pad_batch(x, y, size)
        yield xb, yb, w, len(x)


def _clean(metrics: dict) -> dict:
    return {k.replace("/", "_"): float(v) for k, v in metrics.items()}


def _score(metrics: dict) -> float:
    acc = [v for k, v in metrics.items() if k.startswith("accuracy/")]
    return acc[0] if acc else -metrics["loss"]


def _read_best(run_dir: Path):
    p = run_dir / "best.json"
    return json.loads(p.read_text())["score"] if p.exists() else None


def _write_best(run_dir: Path, score: float, step: int):
    tmp = run_dir / "best.json.tmp"
    tmp.write_text(json.dumps({"score": score, "step": step}))
    tmp.replace(run_dir / "best.json")


__all__ = ["prepare", "fit", "evaluate", "TrainError", "RunError"]
