"""The lecture's losses, computed from raw outputs (logits) in their numerically stable
forms, and the metrics that go with them. Every loss is per example; the step weights
and averages (padded examples in a last partial batch get weight 0)."""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import optax

LossKind = Literal["categorical_crossentropy", "binary_crossentropy", "mse"]
DEFAULT_FOR_OUTPUT = {"softmax": "categorical_crossentropy", "sigmoid": "binary_crossentropy",
                      "linear": "mse", "softplus": "mse"}


def per_example(kind: str, output: str, logits, y, label_smoothing: float = 0.0):
    logits = logits.astype(jnp.float32)
    if kind == "categorical_crossentropy":
        if label_smoothing:
            if y.ndim != logits.ndim:
                y = jax.nn.one_hot(y, logits.shape[-1], dtype=jnp.float32)
            y = optax.smooth_labels(y, label_smoothing)
        if y.ndim == logits.ndim:      # one-hot or soft targets (mixup, cutmix, smoothing)
            return optax.softmax_cross_entropy(logits, y)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y)
    if kind == "binary_crossentropy":
        y = y.reshape(logits.shape).astype(jnp.float32)
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(axis=tuple(range(1, logits.ndim)))
    # mse on the head's output (softplus keeps predictions positive, e.g. prices)
    pred = _output(output, logits)
    y = y.reshape(pred.shape).astype(jnp.float32)
    return jnp.square(pred - y).mean(axis=tuple(range(1, pred.ndim)))


def _output(output, logits):
    if output == "softplus":
        return jax.nn.softplus(logits)
    if output == "sigmoid":
        return jax.nn.sigmoid(logits)
    return logits


def correct(kind: str, logits, y):
    """Per-example 1.0/0.0 for classification heads; None for regression."""
    if kind == "categorical_crossentropy":
        labels = y.argmax(-1) if y.ndim == logits.ndim else y
        return (logits.argmax(-1) == labels).astype(jnp.float32)
    if kind == "binary_crossentropy":
        y = y.reshape(logits.shape)
        return ((logits > 0) == (y > 0.5)).astype(jnp.float32).mean(
            axis=tuple(range(1, logits.ndim)))
    return None
