"""What archspec's training loop costs beyond the steps themselves: `archspec train`'s loop
(batching, prefetch, several steps per dispatch, metrics, health checks, checkpoints)
against a hand-written Flax/optax loop doing the same steps on the same in-memory arrays.

Both sides train the experiment's network with its optimiser (the same optax
transformation, schedule included), batch size, data arrays and number of steps; the
plain loop only shuffles, steps and blocks at the end. archspec trains with
`eval_splits=[]` (the plain loop validates nothing) and its default checkpoint policy, so
its final checkpoint is written and waited for inside the timed part.

Compilation is excluded from both: round 0 compiles into a private persistent compilation
cache and is not counted; later rounds read their programs from it, as a re-run does, and
the time JAX still spends tracing, lowering and loading them (its own compile-time events,
summed by a listener) is subtracted from each side's wall time.
Rounds alternate (archspec, plain, archspec, ...); the figure is the median of per-round
ratios (the machine may be shared).

    .venv/bin/python benchmarks/loop_overhead.py --model conv1d [--rounds 3]
    .venv/bin/python benchmarks/loop_overhead.py --model lenet
    .venv/bin/python benchmarks/loop_overhead.py --model cnn
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"

# (experiment, steps, extra overrides): (a) the digits LeNet, (b) a ~5k-parameter 1-D CNN on
# sequences of length 64 for 6,000 steps, (c) a VGG-style CNN on 32×32×3 images.
MODELS = {
    "lenet": ("experiments/digits_lenet.yaml", 2000, []),
    "conv1d": ("experiments/timeseries_conv1d.yaml", 6000, ["data.options.n=8000"]),
    "cnn": ("experiments/shapes_vgg.yaml", 150, []),
}


def load_setup(args, out: str):
    from archspec.experiment import load as experiment
    from archspec.train.setup import prepare_loaded

    file, steps, extra = MODELS[args.model]
    overrides = [f"steps={args.steps or steps}", f"output={out}", "eval_splits=[]", *extra,
                 *args.set]
    return prepare_loaded(experiment.load(ROOT / file, overrides))


COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration",
                  "/jax/compilation_cache/cache_retrieval_time_sec")
_compile_s = [0.0]


def _on_event(event: str, seconds: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _compile_s[0] += seconds


def timed(fn, *args) -> float:
    """Wall time of fn(*args) minus the JAX compile-time events inside it."""
    before, t = _compile_s[0], time.perf_counter()
    fn(*args)
    return time.perf_counter() - t - (_compile_s[0] - before)


def archspec_run(setup) -> None:
    from archspec.train.loop import fit

    fit(setup)


def plain_run(setup) -> None:
    """The hand-written loop: same model, data arrays, batch size, optax transformation and
    number of steps; cross-entropy on the first head; full batches in a fresh order each
    epoch."""
    x, y = setup.dataset.train.x, setup.dataset.train.y
    model, bs, tx = setup.model, setup.exp.batch_size, setup.tx
    head = setup.heads[0].head
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                           jnp.asarray(x[:1]), train=False)
    params, stats = variables["params"], variables.get("batch_stats", {})
    opt_state = tx.init(params)

    @jax.jit
    def step(params, stats, opt_state, xb, yb, key):
        def loss(p):
            out, new = model.apply({"params": p, "batch_stats": stats}, xb, train=True,
                                   rngs={"dropout": key}, mutable=["batch_stats"])
            ce = optax.softmax_cross_entropy_with_integer_labels(out[head], yb).mean()
            return ce, new.get("batch_stats", stats)

        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, value

    rng, key, done = np.random.default_rng(0), jax.random.key(2), 0
    while done < setup.total_steps:
        order = rng.permutation(len(y))
        for b in range(len(y) // bs):
            if done == setup.total_steps:
                break
            idx = order[b * bs:(b + 1) * bs]
            params, stats, opt_state, value = step(params, stats, opt_state, x[idx], y[idx],
                                                   jax.random.fold_in(key, done))
            done += 1
    jax.block_until_ready(value)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(MODELS), default="conv1d")
    p.add_argument("--steps", type=int, default=None, help="default: the model's row")
    p.add_argument("--rounds", type=int, default=3, help="counted rounds (after round 0)")
    p.add_argument("--set", action="append", default=[], help="an archspec override")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        jax.config.update("jax_compilation_cache_dir", str(Path(out) / "jax-cache"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        setup = load_setup(args, out)
        jax.monitoring.register_event_duration_secs_listener(_on_event)
        archspec_run(setup), plain_run(setup)  # round 0: compile into the cache
        rounds = [{"archspec": timed(archspec_run, setup), "plain": timed(plain_run, setup)}
                  for _ in range(args.rounds)]
    ratio = statistics.median(r["archspec"] / r["plain"] for r in rounds)
    med = {k: statistics.median(r[k] for r in rounds) for k in ("archspec", "plain")}
    from archspec.engine.epoch import steps_per_execution
    k = steps_per_execution(setup.exp.steps_per_execution, setup.graph, setup.exp.batch_size,
                            setup.steps_per_epoch, jax.devices()[0].platform)
    result = {"command": " ".join(sys.argv), "model": args.model, "steps": setup.total_steps,
              "batch": setup.exp.batch_size, "steps_per_execution": k,
              "parameters": setup.graph.total("params"), "rounds": rounds, "median_s": med,
              "archspec_over_plain": ratio, "devices": str(jax.devices())}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"loop_overhead_{args.model}.json").write_text(json.dumps(result, indent=1))
    print(f"{args.model}: {setup.total_steps} steps of batch {setup.exp.batch_size} "
          f"({k} per dispatch): archspec {med['archspec']:.2f} s, plain loop "
          f"{med['plain']:.2f} s (archspec/plain {ratio:.2f}×, median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
