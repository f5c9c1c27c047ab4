"""`optimizer.weight_decay_exclude`: with zero gradients an update is the weight decay
alone, so one step moves every decayed parameter by exactly the hand-computed amount and
leaves the excluded ones (biases, batchnorm/layernorm scale and offset, `scale` factors,
prelu slopes) where they were."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from helpers import ROOT

LR, WD, MU = 0.1, 0.05, 0.9
SPEC = {"name": "masked", "input": {"shape": [6, 6, 3]}, "layers": [
    {"conv": {"maps": 4, "kernel": 3}}, "batchnorm", "prelu", "scale",
    {"pool": {"op": "avg", "global": True}}, "layernorm",
    {"dense": {"units": 2, "activation": "linear"}}],
    "heads": {"out": {"from": "dense1", "output": "softmax"}}}
DECAYED = {("conv1", "kernel"), ("dense1", "kernel")}
GROUPS = {("conv1", "bias"): "bias", ("dense1", "bias"): "bias",
          ("batchnorm1", "scale"): "norm", ("batchnorm1", "bias"): "norm",
          ("layernorm1", "scale"): "norm", ("layernorm1", "bias"): "norm",
          ("scale1", "scale"): "norm", ("prelu1", "slope"): "slope"}


@pytest.fixture(scope="module")
def params():
    """The network's real parameter tree, every value random and non-zero (a fresh
    network's biases are zero, which no decay would move)."""
    from archspec.model.build import abstract_variables, build_model
    from archspec.spec.resolve import load_architecture_text

    graph = load_architecture_text(json.dumps(SPEC))
    shapes = abstract_variables(build_model(graph), graph)["params"]
    rng = np.random.default_rng(0)
    return jax.tree_util.tree_map(
        lambda s: (rng.uniform(0.5, 2.0, s.shape) * rng.choice([-1, 1], s.shape))
        .astype(np.float32), shapes)


def flat(tree) -> dict:
    return {tuple(k.key for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def one_update(params, **opt):
    from archspec.experiment.config import Optimizer
    from archspec.engine.optim import make_optimizer
    import optax

    tx, _ = make_optimizer(Optimizer(lr=LR, weight_decay=WD, **opt), 100)
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    return flat(optax.apply_updates(params, updates))


# the first update from zero gradients and zero optimiser state, in NumPy
EXPECTED = {
    "sgd": lambda p: p - LR * WD * p,
    # velocity v = g + wd·p; nesterov steps by lr·(g + wd·p + μ·v)
    "momentum": lambda p: p - LR * WD * p,
    "nesterov": lambda p: p - LR * (1 + MU) * WD * p,
    # m = v = 0: the adam direction m̂/(√v̂ + ε) is 0; the decay is decoupled, scaled by lr
    "adamw": lambda p: p - LR * (0 / (np.sqrt(0) + 1e-8) + WD * p),
    # adam sees g = wd·p: m̂ = g, v̂ = g², step lr·m̂/(√v̂ + ε)
    "adam": lambda p: p - LR * (WD * p) / (np.sqrt((WD * p) ** 2) + 1e-8),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_excluded_parameters_do_not_move(params, name):
    before = flat(params)
    assert set(before) == DECAYED | set(GROUPS)
    after = one_update(params, name=name, momentum=MU,
                       weight_decay_exclude=["bias", "norm", "slope"])
    rtol = 1e-5 if name == "adam" else 1e-6   # adam's m̂ and v̂ round in float32
    for key, p in before.items():
        want = EXPECTED[name](p) if key in DECAYED else p
        np.testing.assert_allclose(after[key], want, rtol=rtol, atol=1e-7, err_msg=str(key))
        if key in DECAYED:
            assert not np.allclose(after[key], p), key


@pytest.mark.parametrize("exclude", [[], ["bias"], ["norm"], ["slope"], ["norm", "bias"]])
def test_each_group_excludes_only_its_parameters(params, exclude):
    before = flat(params)
    after = one_update(params, name="sgd", weight_decay_exclude=exclude)
    for key, p in before.items():
        excluded = GROUPS.get(key) in exclude
        want = p if excluded else p - LR * WD * p
        np.testing.assert_allclose(after[key], want, rtol=1e-6, atol=1e-7, err_msg=str(key))


def test_stacked_blocks_are_masked_by_name():
    """With scan_blocks a run of blocks is one node of stacked parameters."""
    from archspec.engine.optim import decay_mask

    tree = {"stage": {"conv": {"kernel": np.ones((2, 3, 3, 4, 4)), "bias": np.ones((2, 4))},
                      "bn": {"scale": np.ones((2, 4)), "bias": np.ones((2, 4))}}}
    assert decay_mask(["norm"])(tree) == {"stage": {"conv": {"kernel": True, "bias": True},
                                                    "bn": {"scale": False, "bias": False}}}
    assert decay_mask([]) is None   # the default: every parameter decays


@pytest.mark.parametrize("value, message", [
    ("[bias, normm]", "unknown weight_decay_exclude 'normm'"),
    ("[bias, bias]", "bias is listed more than once"),
    ("bias", "'weight_decay_exclude' must be a list"),
])
def test_bad_exclusions_are_located_errors(value, message):
    from archspec.errors import SpecErrors
    from archspec.experiment.config import load_experiment

    override = f"optimizer.weight_decay_exclude={value}"
    with pytest.raises(SpecErrors) as exc:
        load_experiment(ROOT / "experiments/digits_mlp.yaml", [override])
    (error,) = exc.value.errors
    assert str(error.pos) == f"--set {override}"
    assert message in error.render_plain(), error.render_plain()


@pytest.mark.parametrize("clip", [None, 1.0])
def test_groups_scale_their_layers_rate_and_frozen_layers_never_move(clip):
    """sgd at 0.1 on gradients of 3 everywhere: `a` moves by 0.1·3, the group `b` (scale
    0.5) by 0.05·3, the frozen `c` not at all. With clip_norm 1 the gradient is clipped over
    every parameter together (norm 3·√8 over the 8 values, frozen ones included, as PyTorch's
    clip_grad_norm_ sees them), then scaled per group."""
    import jax.numpy as jnp

    from archspec.engine.optim import make_optimizer
    from archspec.experiment.config import Optimizer

    params = {"a": {"kernel": jnp.ones((2, 2))}, "b": {"kernel": jnp.ones(2)},
              "c": {"kernel": jnp.ones(2), "bias": jnp.ones(0)}}
    cfg = Optimizer(name="sgd", lr=0.1, clip_norm=clip, weight_decay_exclude=["bias"])
    tx, lr = make_optimizer(cfg, 10, frozen={"c"}, groups=((frozenset({"b"}), 0.5),))
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 3.0), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    g = 3.0 if clip is None else 3.0 / (3.0 * np.sqrt(8))
    np.testing.assert_allclose(updates["a"]["kernel"], -0.1 * g, rtol=1e-6)
    np.testing.assert_allclose(updates["b"]["kernel"], -0.05 * g, rtol=1e-6)
    np.testing.assert_array_equal(updates["c"]["kernel"], 0.0)
    assert float(lr(0)) == pytest.approx(0.1)


def test_a_group_naming_no_layer_is_located(tmp_path):
    from helpers import run_cli

    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ROOT}/architectures/lenet5.yaml\n"
                   "data: {name: digits}\noptimizer:\n  name: sgd\n"
                   "  groups: [{layers: [c5], lr_scale: 0.1}, {layers: [c9], lr_scale: 2}]\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert f"{exp}:6:11" in err and "optimizer.groups: 'c9' names no layer of lenet5" in err
