"""The moving average of the weights (`ema:`): the train state's average against a NumPy
recurrence over the weights each step produced, and a trained run evaluated with it."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from helpers import only_run, read_records, run_cli

NET = ("name: t\ninput: {shape: [5]}\ndefaults: {activation: tanh}\n"
       "layers:\n  - dense: 7\n  - batchnorm\n  - dense: {units: 1, activation: linear}\n")


def _train(rule, steps=12):
    """The weights after each step (index 0: the initial ones) and the final state."""
    from archspec.engine.optim import make_optimizer
    from archspec.engine.step import HeadLoss, init_state, make_mesh, make_train_step
    from archspec.experiment.config import Optimizer
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text

    g = load_architecture_text(NET)
    model, heads = build_model(g), [HeadLoss("output", "mse", "linear", 1.0)]
    tx, _ = make_optimizer(Optimizer(name="adam", lr=0.05), steps)
    state = init_state(model, g, tx, 0, jnp.zeros((1, 5)), ema=True)
    step = make_train_step(model, heads, tx, make_mesh(), ema=rule)
    rng = np.random.default_rng(0)
    seen = [jax.device_get({"params": state.params, "batch_stats": state.batch_stats})]
    for _ in range(steps):
        x = rng.normal(size=(8, 5)).astype(np.float32)
        y = rng.normal(size=(8, 1)).astype(np.float32)
        state, _, _ = step(state, x, y, np.ones(8, np.float32))
        seen.append(jax.device_get({"params": state.params, "batch_stats": state.batch_stats}))
    return seen, jax.device_get(state)


@pytest.mark.parametrize("warmup", [False, True])
def test_the_average_is_the_recurrence(warmup):
    from archspec.engine.ema import EmaRule

    decay = 0.8
    seen, state = _train(EmaRule(decay, warmup))
    flat = [jax.tree_util.tree_leaves(s) for s in seen]
    ema = [np.asarray(a, np.float64) for a in flat[0]]
    for t in range(1, len(flat)):
        d = min(decay, (1 + t) / (10 + t)) if warmup else decay
        ema = [d * e + (1 - d) * np.asarray(w, np.float64) for e, w in zip(ema, flat[t])]
    got = jax.tree_util.tree_leaves(state.ema)
    # 2 kernels, 2 biases, BatchNorm's scale and bias, and its running mean and variance
    assert len(got) == len(ema) == 8
    for g, e in zip(got, ema):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree_util.tree_leaves(state.ema["params"])[0],
                           jax.tree_util.tree_leaves(state.params)[0])


TINY = """\
name: avg
architecture:
  name: linear
  input: {shape: [64]}
  layers:
    - dense: {units: 10, activation: linear, name: logits}
  heads:
    digits: {from: logits, output: softmax}
data: {name: digits, val_fraction: 0, limit: 400}
optimizer: {name: sgd, lr: 0.5}
ema: {decay: 0.9}
epochs: 3
batch_size: 40
"""


def test_a_run_is_tested_and_evaluated_with_its_average(tmp_path):
    """The test record and `archspec eval` give the accuracy of the averaged weights in
    the checkpoint, computed here by hand: x @ kernel + bias on the normalised test split."""
    import orbax.checkpoint as ocp

    from archspec.data import DataConfig, load_dataset

    exp = tmp_path / "avg.yaml"
    exp.write_text(TINY)
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout + r.stderr
    run = only_run(tmp_path / "runs")
    (test,) = [rec for rec in read_records(run) if rec["split"] == "test"]
    step_dir = run / "checkpoints" / "latest" / str(test["checkpoint_step"])
    saved = ocp.StandardCheckpointer().restore((step_dir / "default").resolve())["state"]
    avg, raw = saved["ema"]["params"]["logits"], saved["params"]["logits"]
    assert not np.allclose(avg["kernel"], raw["kernel"])  # the average is its own weights
    cfg = yaml.safe_load(TINY)["data"]
    ds = load_dataset(DataConfig(**cfg), (64,), seed=0)
    logits = ds.test.x @ np.asarray(avg["kernel"]) + np.asarray(avg["bias"])
    by_hand = float((logits.argmax(1) == ds.test.y).mean())
    assert test["accuracy_digits"] == pytest.approx(by_hand, abs=1e-6)
    r = run_cli("eval", run, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["metrics"]["accuracy/digits"] == pytest.approx(by_hand)
