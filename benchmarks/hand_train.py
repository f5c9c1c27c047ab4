"""The hand-written script `benchmarks/whole_run.py` times `archspec train` against: what a
person writes in Flax and optax to do the same work as an archspec run's defaults. It loads
the data, trains with the experiment's network, optimiser, batch and epochs, validates after
every epoch, keeps the best parameters (accuracy, then loss) and tests them at the end.
It writes nothing but its caches (given `--cache`): JAX's persistent compilation cache and
the generated MNIST-1D pickle, as archspec keeps its own.

    .venv/bin/python benchmarks/hand_train.py mnist1d [--cache DIR]
    .venv/bin/python benchmarks/hand_train.py lenet [--cache DIR]
    .venv/bin/python benchmarks/hand_train.py fashion [--cache DIR]   # needs the data installed
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


class FashionCNN(nn.Module):
    """architectures/fashion_cnn.yaml: two conv + BatchNorm + pooling stages, a dense layer
    with BatchNorm and dropout."""
    @nn.compact
    def __call__(self, x, train: bool = False):
        def bn(x):
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)

        for maps in (32, 64):
            x = nn.Conv(maps, (3, 3), padding=[(1, 1), (1, 1)], use_bias=False)(x)
            x = nn.max_pool(nn.relu(bn(x)), (2, 2), (2, 2))
        x = nn.relu(bn(nn.Dense(256, use_bias=False)(x.reshape(x.shape[0], -1))))
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(10)(x)


FASHION = "/usr/share/datasets/fashion-mnist"  # apt-get install dataset-fashion-mnist


def fashion_data(rng, cache):
    """The gzip IDX files: 6,000 of the 60,000 held out for validation, t10k as the test
    split, standardised by the training split."""
    import gzip

    def idx(name, header):
        with gzip.open(f"{FASHION}/{name}") as f:
            return np.frombuffer(f.read(), np.uint8, offset=header)

    x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32)
    y = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int32)
    xt = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32)
    yt = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int32)
    order = rng.permutation(len(y))
    val, train = order[:6000], order[6000:]
    mean, std = x[train].mean(), x[train].std()
    x, xt = (x - mean) / std, (xt - mean) / std
    return (x[train], y[train]), (x[val], y[val]), (xt, yt)


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
    "fashion": (FashionCNN, fashion_data,
                lambda steps: optax.adam(optax.cosine_decay_schedule(2e-3, steps)), 3, 128),
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
    variables = model.init(jax.random.key(0), x[:1])
    params, stats = variables["params"], variables.get("batch_stats", {})  # BatchNorm's
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, stats, opt_state, xb, yb, step):
        def loss_fn(p):
            drop = jax.random.fold_in(jax.random.key(1), step)
            logits, new = model.apply({"params": p, "batch_stats": stats}, xb, train=True,
                                      rngs={"dropout": drop}, mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
            return loss, new.get("batch_stats", {})
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    @jax.jit
    def evaluate(params, stats, xe, ye):
        logits = model.apply({"params": params, "batch_stats": stats}, xe)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, ye).mean()
        return loss, (logits.argmax(-1) == ye).mean()

    def measure(params, stats, xe, ye, size=1000):
        """Loss and accuracy over a split, in batches of `size` (Fashion's 10,000 test
        images at once would take gigabytes of activations)."""
        parts = [(len(ye[i:i + size]), evaluate(params, stats, xe[i:i + size], ye[i:i + size]))
                 for i in range(0, len(ye), size)]
        return tuple(sum(n * float(m[j]) for n, m in parts) / len(ye) for j in (0, 1))

    best, best_params, step = None, (params, stats), 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            params, stats, opt_state, loss = train_step(params, stats, opt_state, x[idx],
                                                        y[idx], step)
            step += 1
        val_loss, val_acc = measure(params, stats, xv, yv)
        if best is None or (val_acc, -val_loss) > best:
            best, best_params = (val_acc, -val_loss), (params, stats)
        print(f"epoch {epoch + 1}: train loss {float(loss):.4f} val acc {val_acc:.4f}")
    test_loss, test_acc = measure(*best_params, xt, yt)
    print(f"test accuracy {float(test_acc):.4f} loss {float(test_loss):.4f} "
          f"({time.perf_counter() - T0:.1f} s)")


if __name__ == "__main__":
    main()
