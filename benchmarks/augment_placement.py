"""Where augmentation should run: on the device inside the jitted step (archspec's choice)
or in NumPy on the host before the batch is copied over.

Both sides do the same CIFAR-style recipe on the same batch (random crop with 4-pixel
padding, horizontal flip, one 8×8 cutout) and are timed interleaved in one process,
round by round; the reported figure is the median of per-round ratios. For scale, the
same rounds also time one train step of `benchmarks/specs/cnn6.yaml` without any
augmentation.

    .venv/bin/python benchmarks/augment_placement.py [--batch 128] [--rounds 15]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from archspec.engine import augment as A

HERE = Path(__file__).resolve().parent


def host_recipe(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """The recipe in NumPy, vectorised where NumPy allows (crop offsets differ per image)."""
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    dy, dx = rng.integers(0, 9, n), rng.integers(0, 9, n)
    out = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
    ys, xs = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    box = ((ys >= (cy - 4)[:, None, None]) & (ys < (cy + 4)[:, None, None])
           & (xs >= (cx - 4)[:, None, None]) & (xs < (cx + 4)[:, None, None]))
    out[box] = 0.0
    return out


def device_recipe():
    steps = [("random_crop", A.RandomCrop(padding=4)), ("flip", A.Flip()),
             ("cutout", A.Cutout(size=8))]
    fn = A.make_augment(steps, {"kind": "none"}, 10)
    return jax.jit(lambda key, x, y: fn(key, x, y)[0])


def train_step(batch: int):
    """One Adam step of cnn6 on a resident batch, as archspec compiles it."""
    import optax

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture
    from archspec.engine.step import HeadLoss, init_state, make_mesh, make_train_step

    graph = load_architecture(str(HERE / "specs" / "cnn6.yaml"))
    model, tx, mesh = build_model(graph), optax.adam(1e-3), make_mesh()
    x = jnp.zeros((batch, 32, 32, 3), jnp.float32)
    state = init_state(model, graph, tx, 0, x[:1])
    head = next(iter(graph.heads.values()))
    step = make_train_step(model, [HeadLoss(head.name, "categorical_crossentropy",
                                            head.output, 1.0)], tx, mesh)
    y, w = jnp.zeros((batch,), jnp.int32), jnp.ones((batch,), jnp.float32)
    holder = {"state": state}

    def run():
        holder["state"], metrics, _ = step(holder["state"], x, y, w)
        jax.block_until_ready(metrics["loss"])

    return run


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (args.batch, 32, 32, 3)).astype(np.float32)
    y = np.zeros((args.batch,), np.int32)
    dev = device_recipe()
    dev(jax.random.key(0), jnp.asarray(x), jnp.asarray(y)).block_until_ready()  # compile
    step = train_step(args.batch)
    step()

    def on_device(i):
        # the batch is copied over as the loop would, then augmented there
        jax.block_until_ready(dev(jax.random.key(i), jax.device_put(x), jnp.asarray(y)))

    def on_host(i):
        jax.block_until_ready(jax.device_put(host_recipe(rng, x)))

    rounds = []
    for i in range(args.rounds):
        rounds.append({"device": timed(lambda: on_device(i)), "host": timed(lambda: on_host(i)),
                       "step": timed(step)})
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratio = statistics.median(r["host"] / r["device"] for r in rounds)
    result = {"command": " ".join(sys.argv), "batch": args.batch, "rounds": rounds,
              "median_s": med, "host_over_device": ratio, "devices": str(jax.devices()),
              "versions": {"jax": jax.__version__, "numpy": np.__version__}}
    out = HERE / "results" / "augment_placement.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"batch {args.batch}: device {med['device'] * 1e3:.2f} ms, host {med['host'] * 1e3:.2f} ms "
          f"(host/device {ratio:.2f}×); one cnn6 train step {med['step'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
