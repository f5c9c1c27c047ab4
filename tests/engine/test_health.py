"""Divergence, dead units, collapse and restarts, as a user sees them."""
from __future__ import annotations

import json
import textwrap

import numpy as np

from helpers import ROOT, only_run, read_records, run_cli


def test_collapse_is_detected_and_a_restart_succeeds(tmp_path):
    r = run_cli("train", ROOT / "experiments/collapse_demo.yaml", "--output", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "collapsed at step" in r.stdout and "every ReLU unit of" in r.stdout
    assert "restarting (attempt 2 of 2)" in r.stdout
    run = only_run(tmp_path)
    attempts = json.loads((run / "attempts.json").read_text())
    assert [a["outcome"] for a in attempts] == ["collapsed", "finished"]
    assert attempts[0]["seed"] != attempts[1]["seed"]
    assert (run / "attempts" / "attempt1" / "checkpoints").is_dir()  # the record is kept
    recs = read_records(run)
    first = [x for x in recs if x.get("split") == "train" and x.get("attempt") == 0]
    assert not first or max(first[-1]["dead_units"].values()) == 1.0
    final = [x for x in recs if x["split"] == "test"][-1]
    assert final["accuracy_digits"] > 0.9
    assert recs[-1]["status"] == "finished"


def test_without_restarts_the_collapse_is_the_outcome(tmp_path):
    r = run_cli("train", ROOT / "experiments/collapse_demo.yaml", "--set", "health.restarts=0",
                "--output", tmp_path)
    assert r.returncode == 4, r.stderr  # collapsed: never the exit code of a finished run
    assert "collapsed (no restarts left)" in r.stdout
    assert read_records(only_run(tmp_path))[-1]["status"] == "collapsed"


DIVERGE = """
name: diverge
architecture:
  name: reg
  input: {shape: [1]}
  defaults: {activation: tanh}
  layers:
    - dense: {units: 16, name: hidden}
    - dense: {units: 1, activation: linear, name: y}
  heads:
    y: {output: linear}
data: {name: function, options: {n: 300}, normalize: none}
optimizer: {name: sgd, lr: 1.0e+30}
steps: 12
batch_size: 32
health: {max_nonfinite: 3, explode_factor: 1.0e+300}  # the non-finite path, not the explosion
"""


def test_divergence_skips_the_update_and_names_the_layer(tmp_path):
    exp = tmp_path / "diverge.yaml"
    exp.write_text(textwrap.dedent(DIVERGE))
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 3, r.stderr
    assert "non-finite loss or gradient, update skipped" in r.stdout
    assert "diverged at step" in r.stdout and "learning rate" in r.stdout
    assert "gradient of 'y' is non-finite first" in r.stdout or "the loss is non-finite" in r.stdout
    run = only_run(tmp_path / "runs")
    assert read_records(run)[-1]["status"] == "diverged"


def test_train_step_keeps_parameters_on_nonfinite_batch():
    """In-process: a NaN input leaves every parameter exactly as it was."""
    import jax
    import jax.numpy as jnp

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    from archspec.engine.optim import make_optimizer
    from archspec.experiment.config import Optimizer
    from archspec.engine.step import HeadLoss, init_state, make_mesh, make_train_step

    g = load_architecture_text("name: t\ninput: {shape: [4]}\nlayers:\n"
                               "  - dense: {units: 3, activation: relu}\n  - dense: 2\n"
                               "heads: {o: {output: softmax}}\n")
    model = build_model(g)
    tx, _ = make_optimizer(Optimizer(name="sgd", lr=0.1), 10)
    state = init_state(model, g, tx, 0, jnp.zeros((1, 4)))
    before = jax.device_get(state.params)
    step = make_train_step(model, [HeadLoss("o", "categorical_crossentropy", "softmax", 1.0)],
                           tx, make_mesh())
    x = np.full((4, 4), np.nan, np.float32)
    new, metrics, health = step(state, x, np.zeros(4, np.int32), np.ones(4, np.float32))
    assert not bool(health["finite"])
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(new.params)):
        np.testing.assert_array_equal(a, b)
    assert int(new.step) == 1


def test_dead_units_are_in_metrics_and_eval(tmp_path):
    r = run_cli("train", ROOT / "experiments/digits_mlp.yaml", "--epochs", "1",
                "--output", tmp_path)
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path)
    train = [x for x in read_records(run) if x["split"] == "train"][0]
    assert set(train["dead_units"]) == {"hidden1", "hidden2"}
    assert all(0.0 <= v <= 1.0 for v in train["dead_units"].values())
    assert set(train["grad_norms"]) == {"hidden1", "hidden2", "logits"}
    r = run_cli("eval", run, "--json")
    out = json.loads(r.stdout)
    assert set(out["dead_units"]) == {"hidden1", "hidden2"}
