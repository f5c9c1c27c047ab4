"""The benchmark networks written by hand in Flax, with a hand-written optax train step:
the zero-overhead reference that archspec's built model and step are measured against.

Layer order (and so parameter creation order) follows the archspec specs, so parameters
can be copied across by position to check that both compute the same function.
"""
from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

conv3 = partial(nn.Conv, kernel_size=(3, 3), padding="SAME")


class LeNetDigits(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(conv3(32)(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(conv3(64)(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128)(x))
        x = nn.Dropout(0.25, deterministic=not train)(x)
        return nn.Dense(10)(x)


class CNN6(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        for maps in (32, 64, 128):
            x = nn.relu(conv3(maps)(x))
            x = nn.relu(conv3(maps)(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(256)(x))
        return nn.Dense(10)(x)


def _bn(train):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


class Basic(nn.Module):
    maps: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        y = nn.Conv(self.maps, (3, 3), self.stride, padding=1, use_bias=False)(x)
        y = nn.relu(_bn(train)(y))
        y = nn.Conv(self.maps, (3, 3), padding=1, use_bias=False)(y)
        y = _bn(train)(y)
        if x.shape != y.shape:
            x = nn.Conv(self.maps, (1, 1), self.stride, use_bias=False)(x)
            x = _bn(train)(x)
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    maps: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        y = nn.Conv(self.maps, (1, 1), use_bias=False)(x)
        y = nn.relu(_bn(train)(y))
        y = nn.Conv(self.maps, (3, 3), self.stride, padding=1, use_bias=False)(y)
        y = nn.relu(_bn(train)(y))
        y = nn.Conv(self.maps * 4, (1, 1), use_bias=False)(y)
        y = _bn(train)(y)
        if x.shape != y.shape:
            x = nn.Conv(self.maps * 4, (1, 1), self.stride, use_bias=False)(x)
            x = _bn(train)(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    blocks: tuple
    bottleneck: bool
    classes: int
    cifar_stem: bool

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.cifar_stem:
            x = nn.Conv(64, (3, 3), padding=1, use_bias=False)(x)
            x = nn.relu(_bn(train)(x))
        else:
            x = nn.Conv(64, (7, 7), 2, padding=3, use_bias=False)(x)
            x = nn.relu(_bn(train)(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        block = Bottleneck if self.bottleneck else Basic
        for i, n in enumerate(self.blocks):
            for j in range(n):
                x = block(64 * 2 ** i, 2 if i and not j else 1)(x, train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.classes)(x)


MODELS = {
    "lenet": LeNetDigits,
    "cnn6": CNN6,
    "resnet18": partial(ResNet, (2, 2, 2, 2), False, 10, True),
    "resnet50": partial(ResNet, (3, 4, 6, 3), True, 1000, False),
    "resnet152": partial(ResNet, (3, 8, 36, 3), True, 1000, False),
}


def make(name):
    return MODELS[name]()


def make_train_step(model, tx):
    """The plainest correct step: mean cross-entropy, Adam, batch statistics, donation."""

    def step(params, stats, opt_state, x, y, rng):
        def loss_fn(p):
            out = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                              rngs={"dropout": rng}, mutable=["batch_stats"] if stats else [])
            logits, upd = out
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, upd.get("batch_stats", stats)

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def init(model, x, seed=0, jit=True):
    """Jitted: fast, but dict keys come back sorted. Not jitted: creation order is kept
    (what `ordered_leaves` relies on)."""
    f = lambda x: model.init({"params": jax.random.key(seed)}, x)  # noqa: E731
    variables = jax.jit(f)(x) if jit else f(x)
    return variables["params"], variables.get("batch_stats", {})


def loss_at(model, params, stats, x, y, train):
    out = model.apply({"params": params, "batch_stats": stats}, x, train=train,
                      mutable=["batch_stats"] if train and stats else False,
                      rngs={"dropout": jax.random.key(0)})
    logits = out[0] if isinstance(out, tuple) else out
    return float(optax.softmax_cross_entropy_with_integer_labels(logits, y).mean())


def ordered_leaves(tree):
    """Leaves in creation (insertion) order: comparable across differently named trees."""
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return [leaf for v in tree.values() for leaf in ordered_leaves(v)]
    return [tree]


def fill(tree, leaves):
    """A tree of `tree`'s structure (insertion order) with `leaves` in order."""
    it = iter(leaves)

    def go(t):
        if isinstance(t, dict) or hasattr(t, "items"):
            return {k: go(v) for k, v in t.items()}
        return jnp.asarray(next(it)).reshape(t.shape).astype(t.dtype)

    out = go(tree)
    assert next(it, None) is None
    return out
