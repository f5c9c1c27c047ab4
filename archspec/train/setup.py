"""A run's set-up, built and checked before step 1: the data loaded, the model built, the
optimiser and heads made, and every check that needs both the experiment and its data
(`check_against`), so training never meets a YAML tree or a data problem."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import jax.numpy as jnp
import optax
from flax import linen as nn
from jax.sharding import Mesh

from archspec.data import DataError, Dataset, load_dataset, steps_per_epoch
from archspec.engine.ema import EmaRule
from archspec.engine.head_losses import chance_rate, head_losses
from archspec.engine.optim import make_optimizer
from archspec.engine.step import HeadLoss, make_mesh
from archspec.errors import ArchspecError, SpecError, SpecErrors, did_you_mean
from archspec.experiment.config import Experiment, locate_data_error
from archspec.layers import REGISTRY
from archspec.spec.graph import Graph, matches
from archspec.train.init_weights import InitialWeights, read_initial_weights


class TrainError(ArchspecError):
    """A run that cannot start as configured (exit 2); `pos` names the config line."""


@dataclass(frozen=True)
class Setup:
    """Everything one attempt trains with. A restart builds a new one (`with_lr_factor`)."""

    exp: Experiment
    graph: Graph
    dataset: Dataset
    model: nn.Module
    heads: list[HeadLoss]
    tx: optax.GradientTransformation
    lr_fn: optax.Schedule
    mesh: Mesh
    total_steps: int
    steps_per_epoch: int
    config: dict
    arch_text: str
    chance: float | None = None      # majority-class rate of the train split
    experiment_file: str | None = None  # fingerprinted, so a resume names a later edit
    augment: Callable | None = None  # (key, x, y) -> (x, y): the experiment's `augment:`
    smoke: bool = False              # a few steps on a little data: `expect:` is not judged
    init_weights: InitialWeights | None = None  # `init:`: a new attempt's first weights
    frozen: frozenset = frozenset()  # the layer ids `freeze:` names: never updated
    groups: tuple = ()               # (layer ids, lr scale) of `optimizer.groups`
    conv_choice: dict | None = None  # `auto`: convolutions measured for oneDNN or XLA

    @property
    def ema(self) -> EmaRule | None:
        """How the run averages its weights (`ema:`), or None."""
        e = self.exp.ema
        return EmaRule(e.decay, e.warmup) if e is not None else None

    @property
    def epochs(self) -> int:
        """Epochs the run's steps span (the last one possibly partial)."""
        return -(-self.total_steps // self.steps_per_epoch)

    def with_lr_factor(self, factor: float) -> "Setup":
        """The same run with its learning rate scaled (a restart after a failed attempt)."""
        opt = self.exp.optimizer
        tx, lr_fn = make_optimizer(opt.model_copy(update={"lr": opt.lr * factor}),
                                   self.total_steps, self.frozen, self.groups)
        return replace(self, tx=tx, lr_fn=lr_fn)


def prepare(exp: Experiment, graph: Graph, arch_text: str, config: dict, smoke: bool = False,
            root=None, experiment_file: str | None = None) -> Setup:
    """Everything a run needs, checked before step 1. `root` is the experiment's YAML tree:
    errors that involve the data point at its lines (None on resume: the run's own config
    was checked when it started)."""
    from archspec.layers import onednn
    from archspec.model.build import abstract_variables, build_model

    onednn.decide()  # a bad $ARCHSPEC_CONV_BACKEND is refused before a run folder exists
    if len(graph.inputs) != 1:
        raise TrainError("training reads one input; this architecture has "
                         f"{len(graph.inputs)} ({', '.join(graph.inputs)})",
                         "multi-input data sets are not supported yet")
    (inp,) = graph.inputs.values()
    try:
        dataset = load_dataset(exp.data, tuple(inp.shape), seed=exp.seed)
    except DataError as exc:
        locate_data_error(exc, root)
        raise
    mesh = make_mesh()
    heads, augment = check_against(exp, graph, dataset, mesh.devices.size, root)
    spe = steps_per_epoch(len(dataset.train.x), exp.batch_size, False)
    total = exp.steps if exp.steps is not None else exp.epochs * spe
    if smoke:
        total = min(total, 3)
    frozen = frozen_layers(exp.freeze, graph, root)
    groups = layer_groups(exp.optimizer.groups, graph, root)
    tx, lr_fn = make_optimizer(exp.optimizer, total, frozen, groups)
    dtype = jnp.bfloat16 if exp.precision == "bf16" else None
    model = build_model(graph, compute_dtype=dtype, frozen=frozen)
    init = None
    if exp.init is not None:  # read and matched now: a misfit is refused before a run folder
        at = root.key_pos.get("init") if root is not None and hasattr(root, "key_pos") else None
        init = read_initial_weights(exp.init, graph, abstract_variables(model, graph), at)
    choice = choose_convolutions(model, graph, exp.batch_size,
                                 exp.eval_batch_size or exp.batch_size)
    return Setup(exp=exp, graph=graph, dataset=dataset, model=model, heads=heads, tx=tx,
                 lr_fn=lr_fn, mesh=mesh, total_steps=total, steps_per_epoch=spe,
                 config=config, arch_text=arch_text, chance=chance_rate(dataset),
                 experiment_file=experiment_file, augment=augment, smoke=smoke,
                 init_weights=init, frozen=frozen, groups=groups, conv_choice=choice)


def check_against(exp: Experiment, graph: Graph, dataset: Dataset, devices: int, root=None):
    """Every check of the experiment against its data, in one place: token ids against the
    embedding tables, the batch against the split and the devices, each augmentation op and
    each head against the data. Returns (heads, augment); errors are located at `root`'s
    lines when there is a YAML tree."""
    check_vocabulary(graph, dataset)
    _check_batch(exp.batch_size, len(dataset.train.x), devices, root)
    if exp.eval_flip:
        _check_flip(graph, dataset, root)
    heads = head_losses(exp, graph, dataset, _pos(root, "data"), _loss_positions(root))
    return heads, _augment(exp, dataset, root)


def check_vocabulary(graph: Graph, dataset: Dataset) -> None:
    """Every token table (a kind's `token_table` option) holds the data's token ids."""
    for node in graph.layers:  # ids beyond a kind's table: NaN vectors, zeros
        size = REGISTRY[node.kind].token_table
        if size and dataset.vocabulary and getattr(node.opts, size) < len(dataset.vocabulary):
            raise TrainError(f"{node.id} has {size} {getattr(node.opts, size)} but the data "
                             f"has {len(dataset.vocabulary)} token ids",
                             f"set {size}: {len(dataset.vocabulary)}, or the data's "
                             f"vocabulary_size: {getattr(node.opts, size)}", pos=node.pos)


def _check_batch(batch_size: int, n_train: int, n_dev: int, root) -> None:
    if batch_size % n_dev:
        raise TrainError(f"batch size {batch_size} does not divide across {n_dev} devices",
                         f"use a multiple of {n_dev}, e.g. --set batch_size="
                         f"{max(n_dev, batch_size // n_dev * n_dev)}")
    if batch_size > n_train:  # every step would be one padded copy of the whole split
        raise SpecErrors([SpecError(
            f"batch size {batch_size} is larger than the training split "
            f"({n_train} examples)", _pos(root, "batch_size"), "batch_size",
            expected=f"at most {n_train}", found=str(batch_size),
            hint=f"--set batch_size={_fit_batch(n_train, n_dev)}, or use more data "
                 "(data.limit, data.val_fraction, data.test_fraction)")])


def _check_flip(graph: Graph, dataset: Dataset, root) -> None:
    """Mirroring needs images, and heads whose outputs do not move with the image."""
    why = None
    if len(dataset.input_shape) != 3:
        why = (f"it mirrors images (height, width, channels); this input is "
               f"{tuple(dataset.input_shape)}")
    spatial = [n for n, h in graph.heads.items() if not h.train_only and len(h.shape or ()) > 1]
    if why is None and spatial:
        why = (f"head {spatial[0]} gives an output per position, which would have to be "
               "mirrored back: not supported yet")
    if why:
        raise SpecErrors([SpecError(f"cannot apply to this data: {why}",
                                    _pos(root, "eval_flip"), "eval_flip",
                                    hint="remove eval_flip")])


def _augment(exp: Experiment, dataset: Dataset, root):
    """The experiment's augmentation as one function, after checking each op fits the data."""
    from archspec.engine.augment import check_steps, make_augment

    problems = check_steps(exp.augment, dataset.input_shape, dataset.task,
                           tuple(dataset.train.y.shape[1:]))
    if problems:
        entries = root.get("augment") if root is not None else None
        raise SpecErrors([SpecError(
            f"{name} cannot apply to this data: {why}",
            _item_pos(entries, i) or _pos(root, "augment"),
            f"augment[{i}]", hint="remove the op, or use data it fits")
            for i, name, why in problems])
    return make_augment([s.op for s in exp.augment], dataset.norm_stats, dataset.num_classes)


def _item_pos(items, i: int):
    positions = getattr(items, "item_pos", None)
    return positions[i] if positions and i < len(positions) else None


def _pos(root, key: str):
    return root.val_pos.get(key) if root is not None else None


def _loss_positions(root) -> dict:
    loss = root.get("loss") if root is not None else None
    return dict(loss.key_pos) if hasattr(loss, "key_pos") else {}


def _fit_batch(n_train: int, n_dev: int) -> int:
    """The largest batch that fits the split and divides across the devices."""
    return max(n_dev, n_train // n_dev * n_dev)


def choose_convolutions(model, graph: Graph, batch: int, eval_batch: int) -> dict | None:
    """Under `auto` with oneDNN available: measure, once per machine, which of the step's
    convolutions oneDNN runs faster than XLA (layers/onednn/choice.py), before the step is
    compiled. Counts of the verdicts, or None when there is no choice to make."""
    import jax
    import numpy as np

    from archspec.layers import onednn
    from archspec.layers.onednn import choice
    from archspec.model.build import abstract_variables

    if onednn.requested() != "auto" or not choice.measuring() or not onednn.active():
        return None
    (inp,) = graph.inputs.values()
    dtype = jnp.int32 if inp.dtype == "int32" else jnp.float32
    variables = abstract_variables(model, graph)

    def total(variables, x, train):
        out = model.apply(variables, x, train=train, rngs={"dropout": jax.random.key(1)},
                          mutable=["batch_stats"] if train else False)
        outs = out[0] if train else out
        return sum(jnp.sum(v.astype(jnp.float32)) for v in outs.values())

    def trace():  # the train step's convolutions and their gradients, and evaluation's
        jax.eval_shape(jax.grad(partial(total, train=True)), variables,
                       jax.ShapeDtypeStruct((batch, *inp.shape), dtype))
        jax.eval_shape(partial(total, train=False), variables,
                       jax.ShapeDtypeStruct((eval_batch, *inp.shape), dtype))

    arrays = []

    def compile_step():  # the forward and backward pass on fixed arrays, compiled afresh
        if not arrays:
            rng = np.random.default_rng(0)
            arrays[:] = [jax.tree.map(lambda s: jnp.asarray(
                0.1 * rng.standard_normal(s.shape), s.dtype), variables),
                jnp.zeros((batch, *inp.shape), dtype) if dtype == jnp.int32 else
                jnp.asarray(rng.standard_normal((batch, *inp.shape)), dtype)]
        step = jax.jit(jax.grad(partial(total, train=True))).lower(*arrays).compile()
        return lambda: jax.block_until_ready(step(*arrays))

    return choice.calibrate(trace, compile_step)


def frozen_layers(globs, graph: Graph, root) -> frozenset:
    """The ids of the layers `freeze:` names; a glob that names no layer is a located error
    (a typo would otherwise train everything)."""
    at = root.val_pos.get("freeze") if root is not None and hasattr(root, "val_pos") else None
    return _named_layers(globs, graph, at, "freeze")


def layer_groups(groups, graph: Graph, root) -> tuple:
    """(layer ids, lr scale) of each `optimizer.groups` entry, its globs checked as
    freeze's are."""
    opt = root.get("optimizer") if root is not None and hasattr(root, "get") else None
    at = opt.val_pos.get("groups") if opt is not None and hasattr(opt, "val_pos") else None
    return tuple((_named_layers(g.layers, graph, at, "optimizer.groups"), g.lr_scale)
                 for g in groups)


def _named_layers(globs, graph: Graph, at, key: str) -> frozenset:
    ids = [n.id for n in graph.layers]
    for glob in globs:
        if not any(matches(i, [glob]) for i in ids):
            more = f" and {len(ids) - 12} more (archspec summary)" if len(ids) > 12 else ""
            raise TrainError(f"{key}: '{glob}' names no layer of {graph.name}", pos=at,
                             hint=did_you_mean(glob, ids) or "a layer's name or path, or a "
                             f"block's (it covers its layers): {', '.join(ids[:12])}{more}")
    return frozenset(i for i in ids if matches(i, globs))


def prepare_loaded(loaded, smoke: bool = False) -> Setup:
    """The Setup of a loaded experiment (data loaded, model built, everything checked)."""
    return prepare(loaded.exp, loaded.graph, loaded.arch_text, loaded.config, smoke=smoke,
                   root=loaded.root, experiment_file=loaded.experiment_file)
