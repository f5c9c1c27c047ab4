"""A run that cannot be right never ends as "finished" with exit 0: heads that cannot fit
the data are refused before step 1, every config value is range-checked with a located
message, divergence on finite values and accuracy stuck at chance are failures, and the exit
code says what happened (docs/reliability.md)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import yaml
from helpers import ROOT, only_run, read_records, run_cli

ARCH = """name: tiny
input: {{shape: [4]}}
defaults: {{activation: {default}}}
layers:
  - dense: {{units: 8, name: hidden}}
  - dense: {{units: {units}, activation: {last}, name: out}}
heads:
  y: {{from: out, output: {output}}}
"""


def _npz(tmp_path, y, n=None, seed=0):
    x = np.random.default_rng(seed).normal(size=(len(y), 4)).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    return path


def _experiment(tmp_path, data_path, *, units=3, output="softmax", last="linear",
                default="tanh", extra=""):
    (tmp_path / "net.yaml").write_text(ARCH.format(units=units, output=output, last=last,
                                                   default=default))
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: e\narchitecture: net.yaml\ndata: {{name: npz, path: {data_path}}}\n"
                   f"epochs: 1\nbatch_size: 16\noutput: {tmp_path / 'runs'}\n{extra}")
    return exp


def _untouched(tmp_path):
    """A refused run writes nothing: no run folder is created."""
    return not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*"))


# --- 1. heads that cannot fit the data --------------------------------------------------

def test_one_sigmoid_unit_on_three_classes_is_refused_with_both_locations(tmp_path):
    data = _npz(tmp_path, np.arange(90) % 3)
    exp = _experiment(tmp_path, data, units=1, output="sigmoid")
    r = run_cli("train", exp)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr
    assert "net.yaml:8:" in err                      # the head's `output:` line
    assert "exp.yaml:3:" in err                      # the experiment's data line
    assert "a sigmoid head with 1 output(s) cannot fit 3 classes" in err
    assert "use `output: softmax` with units: 3" in err
    assert "Traceback" not in err and _untouched(tmp_path)


@pytest.mark.parametrize("units", [2, 5])
def test_softmax_outputs_must_equal_the_class_count(tmp_path, units):
    data = _npz(tmp_path, np.arange(90) % 3)
    r = run_cli("train", _experiment(tmp_path, data, units=units))
    assert r.returncode == 2
    assert f"the head has {units} outputs but the data has 3 classes" in r.stderr
    assert "give the last layer units: 3" in r.stderr and _untouched(tmp_path)


def test_softmax_head_on_real_valued_targets_is_refused(tmp_path):
    y = np.random.default_rng(1).normal(size=90).astype(np.float32)
    r = run_cli("train", _experiment(tmp_path, _npz(tmp_path, y), units=3))
    assert r.returncode == 2
    assert "a softmax head needs class labels" in r.stderr
    assert "`task: classification`" in r.stderr and _untouched(tmp_path)


def test_regression_head_on_class_labels_is_refused(tmp_path):
    data = _npz(tmp_path, np.arange(90) % 3)
    r = run_cli("train", _experiment(tmp_path, data, units=3, output="linear"))
    assert r.returncode == 2
    assert "a regression head (linear output, mse) cannot fit class labels" in r.stderr


def test_sigmoid_head_on_targets_outside_zero_one_is_refused(tmp_path):
    y = np.linspace(-3, 3, 90, dtype=np.float32)
    r = run_cli("train", _experiment(tmp_path, _npz(tmp_path, y), units=1, output="sigmoid"))
    assert r.returncode == 2
    assert "a sigmoid head needs targets between 0 and 1" in r.stderr


def _arch(tmp_path, **kw):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.format(**{"units": 3, "output": "softmax", "last": "linear",
                                   "default": "tanh", **kw}))
    return path


def test_validate_warns_about_double_softmax(tmp_path):
    r = run_cli("validate", _arch(tmp_path, last="softmax"))
    assert r.returncode == 0
    assert "a.yaml:6:" in r.stderr and "warning" in r.stderr
    assert "softmax applied twice" in r.stderr
    assert "set `activation: linear` on 'out'" in r.stderr


def test_validate_warns_about_relu_from_the_defaults_reaching_the_logits(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("name: b\ninput: {shape: [4]}\ndefaults: {activation: relu}\nlayers:\n"
                    "  - dense: {units: 8}\n  - dense: {units: 3}\nheads:\n"
                    "  y: {output: softmax}\n")
    r = run_cli("validate", path)
    assert r.returncode == 0
    assert "b.yaml:6:" in r.stderr
    assert "pass through relu (from `defaults.activation`)" in r.stderr


def test_a_linear_last_layer_gives_no_warning(tmp_path):
    r = run_cli("validate", _arch(tmp_path))
    assert r.returncode == 0 and "warning" not in r.stderr


# --- 2. every configuration value is range-checked ---------------------------------------

BAD_VALUES = [
    ("batch_size=0", "'batch_size' is out of range"),
    ("batch_size=-4", "'batch_size' is out of range"),
    ("epochs=0", "'epochs' is out of range"),
    ("epochs=-1", "'epochs' is out of range"),
    ("steps=0", "'steps' is out of range"),
    ("seed=-1", "'seed' is out of range"),
    (f"seed={2**63}", "'seed' is out of range"),
    ("checkpoint.keep=0", "'keep' is out of range"),
    ("checkpoint.every_steps=0", "'every_steps' is out of range"),
    ("optimizer.lr=0", "'lr' is out of range"),
    ("optimizer.lr=-0.1", "'lr' is out of range"),
    ("optimizer.lr=nan", "expected: a finite number"),
    ("optimizer.lr=inf", "expected: a finite number"),
    ("optimizer.momentum=1.5", "'momentum' is out of range"),
    ("optimizer.momentum=nan", "expected: a finite number"),
    ("optimizer.clip_norm=0", "'clip_norm' is out of range"),
    ("optimizer.clip_norm=nan", "expected: a finite number"),
    ("optimizer.weight_decay=-1", "'weight_decay' is out of range"),
    ("optimizer.schedule.warmup_steps=-1", "'warmup_steps' is out of range"),
    ("health.collapse_steps=0", "'collapse_steps' is out of range"),
    ("health.max_nonfinite=0", "'max_nonfinite' is out of range"),
    ("health.restarts=-1", "'restarts' is out of range"),
    ("health.explode_factor=1", "'explode_factor' is out of range"),
    ("eval_batch_size=0", "'eval_batch_size' is out of range"),
]


@pytest.mark.parametrize("override,message", BAD_VALUES)
def test_every_bad_value_is_a_located_error(override, message):
    from archspec.errors import SpecErrors
    from archspec.experiment.config import load_experiment

    with pytest.raises(SpecErrors) as exc:
        load_experiment(ROOT / "experiments/digits_mlp.yaml", [override])
    (error,) = exc.value.errors
    assert str(error.pos) == f"--set {override}"
    assert message in error.render_plain()


def test_bad_values_are_reported_all_at_once_by_the_cli(tmp_path):
    chosen = [b for b in BAD_VALUES if b[0].split("=")[0] in
              ("batch_size", "seed", "checkpoint.keep", "optimizer.lr", "health.collapse_steps")]
    chosen = list({o.split("=")[0]: (o, m) for o, m in chosen}.values())
    args = [a for o, _ in chosen for a in ("--set", o)]
    r = run_cli("train", ROOT / "experiments/digits_mlp.yaml", *args,
                "--set", f"output={tmp_path}")
    assert r.returncode == 2
    for override, message in chosen:
        assert f"--set {override}: error:" in r.stderr and message in r.stderr
    assert f"{len(chosen)} errors" in r.stderr
    assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())


def test_a_bad_value_in_the_file_points_at_its_line(tmp_path):
    data = _npz(tmp_path, np.arange(90) % 3)
    exp = _experiment(tmp_path, data, extra="checkpoint: {keep: 0}\n")
    r = run_cli("train", exp)
    assert r.returncode == 2
    assert "exp.yaml:7:" in r.stderr and "'keep' is out of range" in r.stderr


def test_a_batch_larger_than_the_training_split_is_refused(tmp_path):
    data = _npz(tmp_path, np.arange(30) % 3)
    exp = _experiment(tmp_path, data, extra="")
    exp.write_text(exp.read_text().replace("batch_size: 16", "batch_size: 64"))
    r = run_cli("train", exp)
    assert r.returncode == 2
    assert "exp.yaml:5:" in r.stderr
    assert "batch size 64 is larger than the training split (21 examples)" in r.stderr
    assert "--set batch_size=21" in r.stderr and _untouched(tmp_path)


def test_a_sweep_grid_value_out_of_range_is_refused_before_anything_trains(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"experiment: {ROOT / 'experiments/digits_mlp.yaml'}\n"
                     f"output: {tmp_path / 'runs'}\n"
                     "grid: {optimizer.lr: [0.01, -1.0]}\n")
    r = run_cli("sweep", sweep)
    assert r.returncode == 2
    assert "s.yaml:3:" in r.stderr and "optimizer.lr (point 1)" in r.stderr
    assert "'lr' is out of range" in r.stderr and "-1.0" in r.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.jsonl"))


# --- 3. a failed run fails -------------------------------------------------------------

@pytest.mark.parametrize("experiment", ["digits_mlp", "digits_logistic"])
def test_an_exploding_finite_loss_is_divergence(tmp_path, experiment):
    r = run_cli("train", ROOT / f"experiments/{experiment}.yaml", "--set", "optimizer.lr=1e6",
                "--set", "epochs=2", "--output", tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "diverged at step" in r.stdout and "the loss exploded" in r.stdout
    assert re.search(r"^status\s+diverged", r.stdout, re.M)
    run = only_run(tmp_path)
    assert read_records(run)[-1]["status"] == "diverged"
    assert json.loads((run / "attempts.json").read_text())[-1]["outcome"] == "diverged"


def test_accuracy_stuck_at_chance_is_a_failure(tmp_path):
    """Inputs carry no information (all zeros): the best a model can do is the majority
    class. Once the loss stops improving, health.chance_epochs epochs at chance (after
    health.chance_min_steps steps) make the run stalled."""
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((120, 4), np.float32), y=np.arange(120) % 3)
    exp = _experiment(tmp_path, path,
                      extra="health: {collapse_steps: 100000, chance_min_steps: 20}\n")
    exp.write_text(exp.read_text().replace("epochs: 1", "epochs: 20"))
    r = run_cli("train", exp, "--set", "data.normalize=none")
    assert r.returncode == 5, r.stdout + r.stderr
    assert "stalled at step" in r.stdout and "is at chance" in r.stdout
    assert "the loss stopped improving" in r.stdout
    trains = [x for x in read_records(only_run(tmp_path / "runs")) if x["split"] == "train"]
    assert 3 <= len(trains) < 20 and trains[-1]["step"] >= 20  # declared, not at the end
    losses = [x["loss"] for x in trains]
    for k in range(len(losses) - 3, len(losses)):   # the last three: no 1% improvement
        assert losses[k] >= 0.99 * min(losses[:k])


def test_a_nonfinite_update_is_never_applied():
    """lr=nan cannot come from a config any more; the step still refuses an update that is
    non-finite although loss and gradient are finite."""
    import jax
    import jax.numpy as jnp
    import optax

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    from archspec.engine.step import HeadLoss, init_state, make_mesh, make_train_step

    graph = load_architecture_text(ARCH.format(units=3, output="softmax", last="linear",
                                               default="tanh"))
    model = build_model(graph)
    tx = optax.sgd(float("nan"))
    state = init_state(model, graph, tx, 0, jnp.zeros((1, 4)))
    before = jax.device_get(state.params)
    step = make_train_step(model, [HeadLoss("y", "categorical_crossentropy", "softmax", 1.0)],
                           tx, make_mesh())
    x = jnp.ones((8, 4))
    new, metrics, health = step(state, x, jnp.zeros(8, jnp.int32), jnp.ones(8))
    assert math.isfinite(float(metrics["loss"])) and not bool(health["finite"])
    after = jax.device_get(new.params)
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)):
        np.testing.assert_array_equal(a, b)


def test_exit_codes_are_documented():
    text = (ROOT / "docs/reliability.md").read_text()
    from archspec.train.loop import EXIT_CODES

    for outcome, code in EXIT_CODES.items():
        assert f"| {code} | {outcome}" in text, outcome


def test_a_finished_run_exits_zero_and_says_finished(tmp_path):
    data = _npz(tmp_path, (np.random.default_rng(3).normal(size=(90, 4))[:, 0] > 0).astype(int))
    x = np.load(data)["x"]
    np.savez(data, x=x, y=(x[:, 0] > 0).astype(np.int64))  # learnable: the sign of feature 0
    exp = _experiment(tmp_path, data, units=2, extra="optimizer: {lr: 0.05}\n")
    exp.write_text(exp.read_text().replace("epochs: 1", "epochs: 4"))
    r = run_cli("train", exp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^status\s+finished", r.stdout, re.M)
    cfg = yaml.safe_load((only_run(tmp_path / "runs") / "config.yaml").read_text())
    assert cfg["health"]["explode_factor"] == 1000.0


def test_json_output_is_strict_json():
    """--json never writes bare NaN or Infinity (no JSON parser outside Python reads them)."""
    from archspec import jsonout

    text = jsonout.dumps({"loss": float("nan"), "acc": [np.float32("inf"), 0.5]})
    assert json.loads(text) == {"loss": None, "acc": [None, 0.5]}
    assert "NaN" not in text and "Infinity" not in text
    edge = [ROOT / "archspec/cli.py", *sorted((ROOT / "archspec/commands").glob("*.py"))]
    # only the schema, which has no numbers to clean, bypasses jsonout
    assert sum(f.read_text().count("json.dumps(") for f in edge) == 1


# --- property: any experiment file ends in a documented exit, never a traceback ----------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_ANY_NUMBER = st.one_of(st.integers(-3, 3), st.sampled_from([0.0, -1.0, 1e-3, 0.5, 1.0, 1e6,
                                                             1e300, 2**63, float("nan"),
                                                             float("inf")]),
                        st.sampled_from(["x", True, None, [1]]))
_FIELDS = {
    "epochs": _ANY_NUMBER, "batch_size": _ANY_NUMBER, "seed": _ANY_NUMBER,
    "eval_batch_size": _ANY_NUMBER,
    "optimizer": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["sgd", "adam", "momentum", "rmsprop", "adamw", "lion"]),
        "lr": _ANY_NUMBER, "momentum": _ANY_NUMBER, "clip_norm": _ANY_NUMBER,
        "weight_decay": _ANY_NUMBER, "accumulate": _ANY_NUMBER}),
    "checkpoint": st.fixed_dictionaries({}, optional={"keep": _ANY_NUMBER,
                                                      "every_steps": _ANY_NUMBER}),
    "health": st.fixed_dictionaries({}, optional={
        "collapse_steps": _ANY_NUMBER, "max_nonfinite": _ANY_NUMBER, "restarts": _ANY_NUMBER,
        "explode_factor": _ANY_NUMBER, "dead_warn": _ANY_NUMBER}),
    "data": st.fixed_dictionaries({"name": st.just("function")}, optional={
        "val_fraction": _ANY_NUMBER, "test_fraction": _ANY_NUMBER, "limit": _ANY_NUMBER}),
}
_EXPERIMENTS = st.fixed_dictionaries({"data": _FIELDS["data"]},
                                     optional={k: v for k, v in _FIELDS.items() if k != "data"})


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_EXPERIMENTS)
def test_any_experiment_file_validates_or_gives_located_errors(tmp_path_factory, fields):
    from archspec.errors import SpecErrors
    from archspec.experiment.config import SEED_MAX, load_experiment

    path = tmp_path_factory.mktemp("exp") / "e.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "architecture": "net.yaml", **fields},
                                   allow_unicode=True))
    try:
        exp, _ = load_experiment(path)
    except SpecErrors as exc:
        assert all(e.pos is not None and e.pos.file == str(path) for e in exc.errors)
        return
    # what validates is in range: nothing nan, nothing that trains zero steps
    assert exp.batch_size >= 1 and exp.epochs >= 1 and 0 <= exp.seed <= SEED_MAX
    assert exp.optimizer.lr > 0 and math.isfinite(exp.optimizer.lr)
    assert 0 <= exp.optimizer.momentum < 1 and exp.checkpoint.keep >= 1


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(lr=st.sampled_from([1e-3, 1e6, 1e30]), batch=st.sampled_from([1, 8, 500]),
       keep=st.sampled_from([1, 3]), clip=st.sampled_from([None, 1e-6, 10.0]))
def test_any_training_ends_in_a_documented_exit_without_nan_parameters(
        tmp_path_factory, lr, batch, keep, clip):
    from typer.testing import CliRunner

    from archspec.cli import app
    from archspec.use.evaluate import load_state
    from archspec.train.loop import EXIT_CODES

    out = tmp_path_factory.mktemp("runs")
    args = ["train", str(ROOT / "experiments/function_approx.yaml"), "--steps", "4",
            "--set", f"optimizer.lr={lr}", "--set", f"batch_size={batch}",
            "--set", f"checkpoint.keep={keep}", "--output", str(out)]
    if clip is not None:
        args += ["--set", f"optimizer.clip_norm={clip}"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in {2, *EXIT_CODES.values()}, result.output
    for run in out.glob("*/*"):
        if not (run / "checkpoints").exists():
            continue  # a failed attempt's checkpoints move to attempts/
        _, state, _ = load_state(run, "latest")
        import jax
        for leaf in jax.tree_util.tree_leaves(state.params):
            assert np.isfinite(np.asarray(leaf)).all()
