"""An exponential moving average of the weights (Polyak averaging; timm's ModelEmaV3, optax's
`ema`), kept in the train state beside the weights it averages and checkpointed with them.

After the update that makes step t (t = 1, 2, ...):

    ema_t = d_t · ema_(t-1) + (1 - d_t) · w_t,    ema_0 = w_0 (the initial weights)

with d_t = decay, or with `warmup` d_t = min(decay, (1 + t) / (10 + t)) (TensorFlow's
ExponentialMovingAverage with num_updates): early on the average follows the weights closely
instead of staying near their random start. BatchNorm's running statistics are averaged the
same way, so the averaged network is evaluated with statistics that match its weights.

A run with an average is evaluated with it: validation (and so the best checkpoint), the test
score, `archspec eval` and `predict` all use the averaged weights (`evaluated`).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class EmaRule:
    decay: float
    warmup: bool = True


def start(params, batch_stats) -> dict:
    """The average before step 1: a copy of the initial weights (buffers of their own: the
    train step donates the state, and one buffer cannot be donated twice)."""
    return jax.tree_util.tree_map(jnp.copy, {"params": params, "batch_stats": batch_stats})


def rate(rule: EmaRule, t):
    """d_t: the weight the average keeps at the update that makes step t."""
    if not rule.warmup:
        return jnp.asarray(rule.decay, jnp.float32)
    t = jnp.asarray(t, jnp.float32)
    return jnp.minimum(rule.decay, (1.0 + t) / (10.0 + t))


def update(rule: EmaRule, ema: dict, params, batch_stats, t) -> dict:
    d = rate(rule, t)
    new = {"params": params, "batch_stats": batch_stats}
    return jax.tree_util.tree_map(lambda e, w: (d * e + (1.0 - d) * w).astype(e.dtype),
                                  ema, new)


def evaluated(state):
    """The state as it is evaluated: its averaged weights when it keeps an average."""
    if getattr(state, "ema", None) is None:
        return state
    return state.replace(params=state.ema["params"], batch_stats=state.ema["batch_stats"])
