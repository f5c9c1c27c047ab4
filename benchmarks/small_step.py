"""The steps alone, for the residual of whole_run.py: archspec's compiled train step (one
step per call, and a `lax.scan` of 12 as the loop runs it) against hand_train.py's step, on
the MNIST-1D CNN, the same batch of 100 resident on the device, in one process, rounds
interleaved. No loop, data feeding, validation or checkpoint: if archspec's step is as fast
as the script's here, what whole_run.py still measures is in the loop around the steps.

    ARCHSPEC_CONV_BACKEND=xla .venv/bin/python benchmarks/small_step.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # archspec, and hand_train beside this file

from hand_train import MNIST1DCNN  # noqa: E402

SPEC = HERE / "specs" / "whole_run_mnist1d.yaml"
STEPS, CHUNK = 600, 12


def archspec_steps():
    from archspec.engine.step import init_state, make_multi_step, make_train_step
    from archspec.experiment import load as experiment
    from archspec.train.setup import prepare_loaded

    s = prepare_loaded(experiment.load(SPEC, []))
    x, y = np.asarray(s.dataset.train.x[:100]), np.asarray(s.dataset.train.y[:100])
    w = np.ones(len(y), np.float32)
    state = [init_state(s.model, s.graph, s.tx, 0, s.dataset.example())]
    one = make_train_step(s.model, s.heads, s.tx, s.mesh, None, s.dataset.norm_stats)
    multi = make_multi_step(s.model, s.heads, s.tx, s.mesh, None, s.dataset.norm_stats)
    xs, ys, ws = (np.stack([a] * CHUNK) for a in (x, y, w))
    valid = np.ones(CHUNK, bool)

    def single(n):
        for _ in range(n):
            state[0] = one(state[0], x, y, w)[0]
        jax.block_until_ready(state[0])

    def scanned(n):
        for _ in range(n // CHUNK):
            state[0] = multi(state[0], xs, ys, ws, valid)[0]
        jax.block_until_ready(state[0])

    return x, y, single, scanned


def hand_steps(x, y):
    model, tx = MNIST1DCNN(), optax.adam(1e-2)
    params = model.init(jax.random.key(0), x[:1])["params"]
    box = [params, tx.init(params)]

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def run(n):
        for _ in range(n):
            box[:] = step(*box, x, y)
        jax.block_until_ready(box[0])

    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    x, y, single, scanned = archspec_steps()
    sides = {"archspec step": single, f"archspec scan of {CHUNK}": scanned,
             "hand step": hand_steps(x, y)}
    for run in sides.values():
        run(CHUNK)  # compile
    times = {k: [] for k in sides}
    cpu = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run(STEPS)
            times[name].append((time.perf_counter() - start) / STEPS * 1e3)
            cpu[name].append((time.process_time() - start_cpu) / STEPS * 1e3)
    # CPU time (all threads) matters as much as wall time: beside another busy process a
    # step's CPU time, not its wall time on idle cores, is what it waits for
    for name, t in times.items():
        print(f"{name:>22}: {np.median(t):.3f} ms a step, {np.median(cpu[name]):.3f} ms of CPU "
              f"(rounds: {', '.join(f'{v:.3f}' for v in t)})")


if __name__ == "__main__":
    main()
