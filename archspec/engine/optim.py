"""Optimisers and schedules from the config, all through optax."""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax

NORM_PARAMS = {"scale", "bias"}  # all a batchnorm, layernorm or `scale` layer learns


def schedule(cfg, total_steps: int):
    s = cfg.schedule
    decay_steps = max(total_steps - s.warmup_steps, 1)
    if s.name == "one_cycle":  # Smith & Topin 2017, PyTorch's OneCycleLR (cosine anneal)
        cycle = optax.cosine_onecycle_schedule(max(total_steps, 1), cfg.lr, s.pct_start,
                                               s.div_factor, s.final_div_factor)
        return jnp.vectorize(cycle)  # optax's takes one step; the loop logs many at once
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


def make_optimizer(cfg, total_steps: int, frozen=frozenset(), groups=()):
    """(optax transformation, learning rate as a function of the step). With
    `accumulate: k` the gradients of k batches are averaged before each update (a batch k
    times larger than fits in memory); the schedule counts updates, not batches. The
    parameters of the `frozen` layer ids are never updated; `groups`, (layer ids, lr
    scale) pairs, train their layers at the schedule's rate times the scale. Gradient
    clipping is over every parameter at once, as without groups."""
    k = cfg.accumulate
    lr = schedule(cfg, max(total_steps // k, 1))
    tx = _update(cfg, lr)
    if frozen or groups:
        parts = {"trained": tx, "frozen": optax.set_to_zero()}
        for i, (_, scale) in enumerate(groups):
            parts[f"group{i}"] = _update(cfg, lambda step, s=scale: lr(step) * s)
        tx = optax.multi_transform(parts, _labels(frozenset(frozen), groups))
    if cfg.clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), tx)
    if k > 1:
        return optax.MultiSteps(tx, every_k_schedule=k), lambda step: lr(step // k)
    return tx, lr


def _update(cfg, lr) -> optax.GradientTransformation:
    """The optimiser at rate `lr` (a schedule), with its weight decay."""
    name = cfg.name
    mask = decay_mask(cfg.weight_decay_exclude)
    if name == "sgd":
        opt = optax.sgd(lr)
    elif name in ("momentum", "nesterov"):
        opt = optax.sgd(lr, momentum=cfg.momentum, nesterov=name == "nesterov")
    elif name == "adam":
        opt = optax.adam(lr)
    elif name == "adamw":
        opt = optax.adamw(lr, weight_decay=cfg.weight_decay, mask=mask)
    else:
        opt = optax.rmsprop(lr)
    if cfg.weight_decay and name != "adamw":  # L2-style decay added to the gradient
        return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=mask), opt)
    return opt


def _labels(frozen: frozenset, groups):
    """The label of each parameter, by its layer id (the first key of its path): frozen,
    else the first group naming the layer, else trained."""
    def label(layer: str) -> str:
        if layer in frozen:
            return "frozen"
        return next((f"group{i}" for i, (ids, _) in enumerate(groups) if layer in ids),
                    "trained")

    def labels(params):
        return {layer: jax.tree_util.tree_map(lambda _, t=label(layer): t, tree)
                for layer, tree in params.items()}

    return labels


def decay_group(path: tuple[str, ...], siblings) -> str | None:
    """The `weight_decay_exclude` group of the parameter at `path` (node names, then its
    own name), given the names of the parameters beside it: `norm` for a layer that learns
    only a scale and/or an offset (batchnorm, layernorm, `scale`), `bias` for the bias of a
    layer with weights (dense, conv, attention projections, recurrent gates), `slope` for a
    prelu's slopes, None for everything else (kernels, embeddings, `parameter` tensors)."""
    name = path[-1]
    if name in NORM_PARAMS and set(siblings) <= NORM_PARAMS:
        return "norm"
    if name == "bias":
        return "bias"
    return "slope" if name == "slope" else None


def decay_mask(exclude):
    """None (decay every parameter) or optax's mask: a function of the parameter tree
    giving True where the parameter decays. It reads only names, so a tree of stacked
    (scanned) blocks is masked like the unstacked one."""
    if not exclude:
        return None
    exclude = frozenset(exclude)

    def mask(params):
        groups = {}

        def walk(node, path):
            leaves = [k for k, v in node.items() if not isinstance(v, Mapping)]
            for k, v in node.items():
                if isinstance(v, Mapping):
                    walk(v, (*path, str(k)))
                else:
                    groups[(*path, str(k))] = decay_group((*path, str(k)), leaves)

        if isinstance(params, Mapping):
            walk(params, ())
        return jax.tree_util.tree_map_with_path(
            lambda p, _: groups.get(tuple(str(getattr(k, "key", k)) for k in p)) not in exclude,
            params)

    return mask
