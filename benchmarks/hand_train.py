"""The hand-written script `benchmarks/whole_run.py` times `archspec train` against: what a
person writes in Flax and optax to do the same work as an archspec run's defaults. It loads
the data, trains with the experiment's network, optimiser, batch and epochs, validates after
every epoch, keeps the best parameters (accuracy, then loss) and tests them at the end.
It writes nothing but its caches (given `--cache`): JAX's persistent compilation cache and
the generated MNIST-1D pickle, as archspec keeps its own.

    .venv/bin/python benchmarks/hand_train.py mnist1d [--cache DIR]
    .venv/bin/python benchmarks/hand_train.py lenet [--cache DIR]
"""
from __future__ import annotations

import argparse
import os
import time

T0 = time.perf_counter()

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402


class MNIST1DCNN(nn.Module):
    """architectures/mnist1d_cnn.yaml."""
    @nn.compact
    def __call__(self, x, train: bool = False):
        for kernel in (5, 3, 3):
            x = nn.relu(nn.Conv(25, (kernel,), strides=(2,), padding=[(1, 1)])(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


class LeNet(nn.Module):
    """architectures/lenet_digits.yaml."""
    @nn.compact
    def __call__(self, x, train: bool = False):
        for maps in (32, 64):
            x = nn.relu(nn.Conv(maps, (3, 3), padding="SAME")(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        x = nn.Dropout(0.25, deterministic=not train)(x)
        return nn.Dense(10)(x)


def mnist1d_data(rng, cache):
    """The paper's 4,000 / 1,000 split, 400 of the 4,000 held out for validation. Generated
    once and then read from a pickle, as the package's README shows (archspec keeps the
    generated arrays in its data cache)."""
    from mnist1d import data
    d = data.get_dataset(data.get_dataset_args(), path=f"{cache}/mnist1d_data.pkl",
                         download=False, verbose=False)
    x, y = d["x"].astype(np.float32)[..., None], d["y"].astype(np.int32)
    order = rng.permutation(len(y))
    val, train = order[:400], order[400:]
    return ((x[train], y[train]), (x[val], y[val]),
            (d["x_test"].astype(np.float32)[..., None], d["y_test"].astype(np.int32)))


def digits_data(rng, cache):
    """sklearn digits: 20% test, 10% val, standardised by the training split."""
    from sklearn.datasets import load_digits
    b = load_digits()
    x, y = b.images[..., None].astype(np.float32), b.target.astype(np.int32)
    order = rng.permutation(len(y))
    n_test, n_val = int(0.2 * len(y)), int(0.1 * len(y))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


WORKLOADS = {  # model, data, optimiser(steps), epochs, batch
    "mnist1d": (MNIST1DCNN, mnist1d_data, lambda steps: optax.adam(1e-2), 167, 100),
    "lenet": (LeNet, digits_data,
              lambda steps: optax.adam(optax.cosine_decay_schedule(2e-3, steps)), 25, 32),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--cache", help="the folder of JAX's persistent compilation cache "
                        "and of the generated data")
    args = parser.parse_args()
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", args.cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    model_cls, load, make_tx, epochs, batch = WORKLOADS[args.workload]
    rng = np.random.default_rng(0)
    (x, y), (xv, yv), (xt, yt) = load(rng, args.cache or ".")
    steps_per_epoch = len(y) // batch
    model, tx = model_cls(), make_tx(epochs * steps_per_epoch)
    params = model.init(jax.random.key(0), x[:1])["params"]
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, xb, yb, step):
        def loss_fn(p):
            drop = jax.random.fold_in(jax.random.key(1), step)
            logits = model.apply({"params": p}, xb, train=True, rngs={"dropout": drop})
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params, xe, ye):
        logits = model.apply({"params": params}, xe)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, ye).mean()
        return loss, (logits.argmax(-1) == ye).mean()

    best, best_params, step = None, params, 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            params, opt_state, loss = train_step(params, opt_state, x[idx], y[idx], step)
            step += 1
        val_loss, val_acc = (float(v) for v in evaluate(params, xv, yv))
        if best is None or (val_acc, -val_loss) > best:
            best, best_params = (val_acc, -val_loss), params
        print(f"epoch {epoch + 1}: train loss {float(loss):.4f} val acc {val_acc:.4f}")
    test_loss, test_acc = evaluate(best_params, xt, yt)
    print(f"test accuracy {float(test_acc):.4f} loss {float(test_loss):.4f} "
          f"({time.perf_counter() - T0:.1f} s)")


if __name__ == "__main__":
    main()
