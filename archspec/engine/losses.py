"""The lecture's losses, computed from raw outputs (logits) in their numerically stable
forms, and the metrics that go with them. Every loss is per example; the step weights
and averages (padded examples in a last partial batch get weight 0). A head with a class
score per position (segmentation: logits (N, H, W, C), integer masks (N, H, W)) has the
mean over its positions as its per-example loss and accuracy (pixel accuracy); its mean
IoU needs the whole split and is counted by `iou_counts` during evaluation."""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from archspec.layers.activation import head_output

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
            per = optax.softmax_cross_entropy(logits, y)
        else:
            per = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return _per_example_mean(per)  # a per-pixel head: the mean over its positions
    if kind == "binary_crossentropy":
        y = y.reshape(logits.shape).astype(jnp.float32)
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(axis=tuple(range(1, logits.ndim)))
    # mse on the head's output (softplus keeps predictions positive, e.g. prices)
    pred = head_output(output, logits)
    y = y.reshape(pred.shape).astype(jnp.float32)
    return jnp.square(pred - y).mean(axis=tuple(range(1, pred.ndim)))


def _per_example_mean(values):
    return values.mean(axis=tuple(range(1, values.ndim))) if values.ndim > 1 else values


def correct(kind: str, logits, y):
    """Per-example 1.0/0.0 for classification heads (for a per-pixel head, the fraction of
    its positions classified right: pixel accuracy); None for regression."""
    if kind == "categorical_crossentropy":
        labels = y.argmax(-1) if y.ndim == logits.ndim else y
        return _per_example_mean((logits.argmax(-1) == labels).astype(jnp.float32))
    if kind == "binary_crossentropy":
        y = y.reshape(logits.shape)
        return ((logits > 0) == (y > 0.5)).astype(jnp.float32).mean(
            axis=tuple(range(1, logits.ndim)))
    return None


def predicted_classes(kind: str, logits: np.ndarray) -> np.ndarray:
    """Class ids of a classification head's raw outputs (a sigmoid head's: 0 or 1)."""
    if kind == "binary_crossentropy":
        return (logits[..., 0] > 0).astype(np.int64)
    return logits.argmax(-1)


def iou_counts(pred: np.ndarray, true: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (intersection, union) pixel counts of predicted and true class ids; summed
    over every batch of a split, they give its mean IoU (`mean_iou`)."""
    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel().astype(np.int64)
    both = np.bincount(true[pred == true], minlength=classes)[:classes]
    area = (np.bincount(pred, minlength=classes)[:classes]
            + np.bincount(true, minlength=classes)[:classes])
    return both, area - both


def mean_iou(intersection: np.ndarray, union: np.ndarray) -> float:
    """The mean over classes of intersection / union; a class absent from both the
    predictions and the truth (union 0) is left out, not counted as 0 or 1."""
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if present.any() else 0.0
