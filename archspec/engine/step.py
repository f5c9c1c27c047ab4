"""One jitted training step and one evaluation step, over a mesh of every device.

The batch is sharded along the mesh's `data` axis and the state is replicated, so the
same code runs on one CPU, eight GPUs or many hosts: XLA inserts the gradient all-reduce.
A last partial batch is padded to the full size with weight-0 examples, so shapes never
change (no recompilation) and every example counts exactly once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from archspec.data import to_network
from archspec.engine import ema as E
from archspec.engine import losses


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    ema: Any = None   # {"params", "batch_stats"} averaged (engine/ema.py), when kept


@dataclass
class HeadLoss:
    head: str
    kind: str
    output: str
    weight: float
    label_smoothing: float = 0.0  # training only: evaluation scores the true labels
    train_only: bool = False      # an auxiliary head: trained with, never evaluated


def make_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


def shardings(mesh: Mesh):
    return NamedSharding(mesh, P("data")), NamedSharding(mesh, P())


def chunk_sharding(mesh: Mesh):
    """A chunk of stacked batches (make_multi_step): examples along axis 1."""
    return NamedSharding(mesh, P(None, "data"))


def _keys(seed: int):
    """(parameters, dropout at init, the per-step stream) keys of a run's seed."""
    return jax.random.split(jax.random.key(seed), 3)


def augment_key(seed: int, step: int):
    """The key the train step augments batch `step` with (what `data show` draws)."""
    rng = jax.random.fold_in(_keys(seed)[2], step)
    return jax.random.fold_in(rng, AUGMENT_STREAM)


def init_state(model, graph, tx, seed: int, example, ema: bool = False) -> TrainState:
    """A new state; `ema`: it also keeps an average of the weights (engine/ema.py).
    Initialised as one compiled program (read from the persistent compilation cache on a
    re-run) rather than op by op: the same values, in a fraction of the time."""

    def make(example):
        pkey, dkey, rkey = _keys(seed)
        variables = model.init({"params": pkey, "dropout": dkey}, example, train=False)
        params, stats = variables["params"], variables.get("batch_stats", {})
        return TrainState(jnp.zeros((), jnp.int32), params, stats, tx.init(params),
                          jax.random.key_data(rkey), E.start(params, stats) if ema else None)

    return jax.jit(make)(example)


def _forward_loss(model, heads: list[HeadLoss], params, batch_stats, x, y, w, rng, train):
    variables = {"params": params, "batch_stats": batch_stats}
    mutable = (["batch_stats"] if batch_stats else []) + ["health"] if train else False
    out = model.apply(variables, x, train=train, rngs={"dropout": rng}, mutable=mutable)
    outputs, updates = out if mutable else (out, {})
    wsum = jnp.maximum(w.sum(), 1.0)
    total, metrics = _head_metrics(heads, outputs, y, w, train)
    health = {k: v[0] for k, v in updates.get("health", {}).items()}
    main = outputs[heads[0].head].astype(jnp.float32)
    # Spread of the main output across real examples: ~0 means constant predictions.
    mean = (main * _bcast(w, main)).sum(0) / wsum
    health["output_spread"] = jnp.sqrt((jnp.square(main - mean) * _bcast(w, main)).sum(0) / wsum).mean()
    return total, (metrics, updates.get("batch_stats", batch_stats), outputs, health)


def _head_metrics(heads: list[HeadLoss], outputs, y, w, train: bool):
    """(total loss, metrics): each head's weighted loss and accuracy over the real examples."""
    wsum = jnp.maximum(w.sum(), 1.0)
    total, metrics = 0.0, {}
    for h in heads:
        per = losses.per_example(h.kind, h.output, outputs[h.head], y,
                                 h.label_smoothing if train else 0.0)
        loss = (per * w).sum() / wsum
        total = total + h.weight * loss
        metrics[f"loss/{h.head}"] = loss
        hit = losses.correct(h.kind, outputs[h.head].astype(jnp.float32), y)
        if hit is not None:
            metrics[f"accuracy/{h.head}"] = (hit * w).sum() / wsum
    metrics["loss"] = total
    return total, metrics


def eval_outputs(model, variables, x, flip: bool = False):
    """Every head's raw outputs at evaluation; `flip`: the mean of the outputs of the images
    and of their horizontal mirrors (NHWC: the width axis). Heads with a spatial output are
    refused with flip before training (train/setup.py): they would need un-mirroring."""
    out = model.apply(variables, x, train=False)
    if flip:
        mirrored = model.apply(variables, jnp.flip(x, axis=2), train=False)
        out = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, out, mirrored)
    return out


def _bcast(w, x):
    return w.reshape((-1,) + (1,) * (x.ndim - 1))


AUGMENT_STREAM = 0x617567  # folded into the step's key: augmentation draws apart from dropout


def train_step_fn(model, heads, tx, augment=None, norm_stats=None, ema=None):
    """The pure step: (state, x, y, w, valid) -> (state, metrics, health). `augment`:
    (key, x, y) -> (x, y) from train.augment, or None. `norm_stats`: the data's, for
    batches that arrive as raw pixels (data.to_network). `ema`: an EmaRule, whose average
    the state keeps. A step with `valid` false (a slot past the end of a chunk, see
    make_multi_step) changes nothing, not even the step count."""

    def step(state: TrainState, x, y, w, valid=True):
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        # a pure function of (seed, step): a resume redraws the augmentation exactly
        x, y = train_inputs(augment, norm_stats, jax.random.fold_in(rng, AUGMENT_STREAM), x, y)
        grad_fn = jax.value_and_grad(_forward_loss, argnums=2, has_aux=True)
        (_, (metrics, stats, _, health)), grads = grad_fn(model, heads, state.params,
                                                          state.batch_stats, x, y, w, rng, True)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        for layer, g in grads.items():  # per-layer norms; non-finite ones locate a divergence
            health["grad:" + layer] = optax.tree.norm(g)
        # A finite gradient can still give a non-finite update (lr=nan, an overflowing
        # second moment): check what would be applied, not only what was computed.
        finite = (jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
                  & jnp.isfinite(optax.tree.norm(updates)))
        health["finite"] = finite
        health["loss"] = metrics["loss"]
        new = state.replace(params=params, batch_stats=stats, opt_state=opt_state)
        if ema is not None:
            new = new.replace(ema=E.update(ema, state.ema, params, stats, state.step + 1))
        # A non-finite step is not applied: the parameters stay as they were.
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(finite & valid, a, b), new, state)
        return new.replace(step=state.step + jnp.asarray(valid, jnp.int32)), metrics, health

    return step


def network_input(x, norm_stats):
    return x if norm_stats is None else to_network(x, norm_stats)


def train_inputs(augment, norm_stats, key, x, y):
    """A train batch as the network takes it: augmented with `key` (train.augment takes raw
    pixels or normalised inputs and returns them normalised), then, not augmented, raw
    pixels normalised. The train step and `data show` both call it."""
    if augment is not None:
        x, y = augment(key, x, y)
    return network_input(x, norm_stats), y


def make_train_step(model, heads, tx, mesh, augment=None, norm_stats=None, ema=None):
    """One jitted step: (state, x, y, w) -> (state, metrics, health)."""
    data, repl = shardings(mesh)
    return jax.jit(train_step_fn(model, heads, tx, augment, norm_stats, ema),
                   in_shardings=(repl, data, data, data),
                   out_shardings=(repl, repl, repl), donate_argnums=(0,))


def make_multi_step(model, heads, tx, mesh, augment=None, norm_stats=None, ema=None):
    """Several steps in one dispatch (Keras' steps_per_execution): a `lax.scan` over a
    chunk of k stacked batches, (state, xs, ys, ws, valid) -> (state, sums, health).

    On a small model one step takes less device time than Python takes to dispatch it,
    fetch its metrics and check its health; a chunk pays those once. `valid[i]` false
    marks a slot past the chunk's real batches (the end of an epoch): it changes nothing.
    `sums` are the chunk's metrics weighted by its real examples (the epoch's means are
    sums / examples); `health` stacks every step's values along axis 0, for the monitor."""
    # XLA:CPU runs convolution gradients inside a loop body in slow layouts unless they
    # are written out (conv_ops `in_loop`); the parameters are the same.
    step = train_step_fn(model.clone(in_loop=True), heads, tx, augment, norm_stats, ema)
    data, (_, repl) = chunk_sharding(mesh), shardings(mesh)

    def body(state, batch):
        x, y, w, valid = batch
        state, metrics, health = step(state, x, y, w, valid)
        real = w.sum() * valid
        return state, ({k: v * real for k, v in metrics.items()}, health)

    def chunk(state, xs, ys, ws, valid):
        state, (weighted, health) = jax.lax.scan(body, state, (xs, ys, ws, valid))
        return state, {k: v.sum() for k, v in weighted.items()}, health

    return jax.jit(chunk, in_shardings=(repl, data, data, data, repl),
                   out_shardings=(repl, repl, repl), donate_argnums=(0,))


def make_eval_step(model, heads, mesh, norm_stats=None, flip: bool = False):
    """Loss and metrics of the inference heads (train_only heads are left out: their
    losses only help training), and every head's outputs (`flip`: see eval_outputs)."""
    data, repl = shardings(mesh)
    heads = [h for h in heads if not h.train_only]

    def step(state: TrainState, x, y, w):
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        outputs = eval_outputs(model, variables, network_input(x, norm_stats), flip)
        _, metrics = _head_metrics(heads, outputs, y, w, False)
        return metrics, outputs

    return jax.jit(step, in_shardings=(repl, data, data, data), out_shardings=(repl, data))


def put_batch(arrays: tuple, sharding, axis: int = 0):
    """Place a global batch (examples along `axis`: 1 for a chunk of stacked batches) on
    the mesh. With several processes (multi-host, after jax.distributed.initialize) every
    process holds the same global batch and contributes its own slice, so no host ever
    sends another host's data."""
    if jax.process_count() == 1:
        return jax.device_put(arrays, sharding)
    n, i = jax.process_count(), jax.process_index()

    def local(a):
        per = a.shape[axis] // n
        part = (slice(None),) * axis + (slice(i * per, (i + 1) * per),)  # a view, no copy
        return jax.make_array_from_process_local_data(sharding, a[part], a.shape)

    return tuple(local(a) for a in arrays)


def fetch(tree):
    """Host copy of (possibly sharded across processes) arrays."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(tree, tiled=True)


def _padding(n: int, size: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Which of a partial batch's n examples fill each of `size` slots (its first ones
    again, None when it is full), and the slots' weights (0 for the repeats)."""
    w = np.ones(size, np.float32)
    if n == size:
        return None, w
    w[n:] = 0.0
    return np.arange(size) % n, w


def pad_indices(idx: np.ndarray, size: int):
    """A partial batch's example indices padded to `size` as pad_batch pads its examples,
    and their weights."""
    fill, w = _padding(len(idx), size)
    return (idx if fill is None else idx[fill]), w


def pad_batch(x, y, size: int):
    """Pad a partial batch to `size` by repeating its first examples with weight 0."""
    fill, w = _padding(len(x), size)
    return (x, y, w) if fill is None else (x[fill], y[fill], w)
