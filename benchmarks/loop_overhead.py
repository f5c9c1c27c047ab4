"""What archspec's training loop costs beyond the steps themselves: `archspec train`'s
loop (data batches, prefetch, metrics, health checks, validation, checkpoints every epoch)
against a plain Flax/optax loop doing the same steps on the same in-memory arrays.

Both train the same small 1-D CNN (experiments/timeseries_conv1d.yaml's network, ~5k
parameters) for the same number of steps with the same batch size and Adam; the plain loop
only shuffles, steps and blocks at the end. Rounds alternate (archspec, plain, archspec,
...); the reported figure is the median of per-round ratios. Compilation is excluded from
neither side (each compiles once per run, as a user's run would).

    .venv/bin/python benchmarks/loop_overhead.py [--epochs 25] [--n 8000] [--rounds 3]
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


def archspec_run(args, out: str) -> tuple[float, int]:
    from archspec.train import experiment
    from archspec.train.loop import fit

    overrides = [f"epochs={args.epochs}", f"output={out}", f"data.options.n={args.n}"]
    loaded = experiment.load(ROOT / "experiments/timeseries_conv1d.yaml", overrides)
    setup = experiment.prepare_loaded(loaded)
    t = time.perf_counter()
    fit(setup)
    return time.perf_counter() - t, setup.total_steps


def plain_run(args, steps: int) -> float:
    """The hand-written loop: same model, data arrays, batch size, optimiser and steps."""
    from archspec.train import experiment

    overrides = [f"data.options.n={args.n}", "output=/tmp"]
    setup = experiment.prepare_loaded(
        experiment.load(ROOT / "experiments/timeseries_conv1d.yaml", overrides))
    x, y = setup.dataset.train.x, setup.dataset.train.y
    model, bs = setup.model, setup.exp.batch_size
    tx = optax.adam(setup.exp.optimizer.lr)
    t = time.perf_counter()
    params = model.init(jax.random.key(0), jnp.asarray(x[:1]))["params"]
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss(p):
            logits = model.apply({"params": p}, xb)
            logits = logits[next(iter(logits))] if isinstance(logits, dict) else logits
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    rng, done = np.random.default_rng(0), 0
    while done < steps:
        order = rng.permutation(len(y))
        for b in range(len(y) // bs):
            if done == steps:
                break
            idx = order[b * bs:(b + 1) * bs]
            params, opt_state, value = step(params, opt_state, x[idx], y[idx])
            done += 1
    jax.block_until_ready(value)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            a, steps = archspec_run(args, out)
            rounds.append({"archspec": a, "plain": plain_run(args, steps), "steps": steps})
    ratio = statistics.median(r["archspec"] / r["plain"] for r in rounds)
    med = {k: statistics.median(r[k] for r in rounds) for k in ("archspec", "plain")}
    result = {"command": " ".join(sys.argv), "rounds": rounds, "median_s": med,
              "archspec_over_plain": ratio, "devices": str(jax.devices())}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "loop_overhead.json").write_text(json.dumps(result, indent=1))
    print(f"{rounds[0]['steps']} steps, {args.epochs} epochs: archspec {med['archspec']:.1f} s, "
          f"plain loop {med['plain']:.1f} s (archspec/plain {ratio:.2f}×)")


if __name__ == "__main__":
    main()
