"""Optimisers and schedules from the config, all through optax."""
from __future__ import annotations

import optax


def schedule(cfg, total_steps: int):
    s = cfg.schedule
    decay_steps = max(total_steps - s.warmup_steps, 1)
    if s.name == "constant":
        main = optax.constant_schedule(cfg.lr)
    elif s.name == "step":
        main = optax.piecewise_constant_schedule(
            cfg.lr, {max(b - s.warmup_steps, 0): s.factor for b in s.boundaries})
    elif s.name == "cosine":
        main = optax.cosine_decay_schedule(cfg.lr, decay_steps,
                                           alpha=s.final_lr / cfg.lr if cfg.lr else 0.0)
    else:
        main = optax.linear_schedule(cfg.lr, s.final_lr, decay_steps)
    if s.warmup_steps:
        warm = optax.linear_schedule(0.0, cfg.lr, s.warmup_steps)
        return optax.join_schedules([warm, main], [s.warmup_steps])
    return main


def make_optimizer(cfg, total_steps: int):
    """(optax transformation, learning rate as a function of the step). With
    `accumulate: k` the gradients of k batches are averaged before each update (a batch k
    times larger than fits in memory); the schedule counts updates, not batches."""
    k = cfg.accumulate
    lr = schedule(cfg, max(total_steps // k, 1))
    name = cfg.name
    if name == "sgd":
        opt = optax.sgd(lr)
    elif name in ("momentum", "nesterov"):
        opt = optax.sgd(lr, momentum=cfg.momentum, nesterov=name == "nesterov")
    elif name == "adam":
        opt = optax.adam(lr)
    elif name == "adamw":
        opt = optax.adamw(lr, weight_decay=cfg.weight_decay)
    else:
        opt = optax.rmsprop(lr)
    chain = []
    if cfg.clip_norm:
        chain.append(optax.clip_by_global_norm(cfg.clip_norm))
    if cfg.weight_decay and name != "adamw":  # L2-style decay added to the gradient
        chain.append(optax.add_decayed_weights(cfg.weight_decay))
    tx = optax.chain(*chain, opt)
    if k > 1:
        return optax.MultiSteps(tx, every_k_schedule=k), lambda step: lr(step // k)
    return tx, lr
