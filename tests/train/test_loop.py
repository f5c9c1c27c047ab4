"""Training as a user runs it: the CLI in a subprocess, run folders, resume after SIGKILL,
a 4-device mesh, and the losses against NumPy."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import ARCHSPEC, ROOT, only_run, read_records, run_cli

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def _final_params(run: Path):
    import jax

    from archspec.use.evaluate import load_state

    _, state, _ = load_state(run, "latest")
    return jax.device_get(state.params), int(state.step)


def test_eval_reports_confusion_matrix(tmp_path):
    trained = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "2",
                      "--output", tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = only_run(tmp_path)
    r = run_cli("eval", run, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # one rule for the test score: train and eval measure the same checkpoint and say which
    best_step = json.loads((run / "best.json").read_text())["step"]
    assert out["checkpoint"] == "best" and out["step"] == best_step
    label = f"test (best checkpoint, step {best_step})"
    accuracy = f"accuracy {100 * out['report']['accuracy']:.2f}%"
    assert label in trained.stdout and accuracy in trained.stdout, trained.stdout
    test_record = [m for m in read_records(run) if m["split"] == "test"][-1]
    assert test_record["checkpoint"] == "best" and test_record["checkpoint_step"] == best_step
    # the console's record is in the run folder, whatever happened to the terminal
    log = (run / "train.log").read_text()
    assert log.startswith("$ archspec train ") and "epoch   2/2" in log
    assert label in log and accuracy in log and "first step compiled and ran in" in log
    cm = np.array(out["report"]["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == out["metrics"]["examples"] == 359
    assert out["report"]["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    # precision/recall by hand from the matrix
    assert out["report"]["recall"][3] == pytest.approx(cm[3, 3] / cm[3].sum())
    assert out["report"]["precision"][3] == pytest.approx(cm[3, 3] / cm[:, 3].sum())
    r = run_cli("eval", run)
    assert "confusion matrix" in r.stdout and "precision" in r.stdout
    assert f"{label}, 359 examples" in r.stdout and accuracy.split()[1] in r.stdout


def test_resume_after_sigkill_is_exact(tmp_path):
    # digits_mlp has dropout, so the dropout keys must be reproduced too
    args = ["train", ROOT / "experiments/digits_mlp.yaml", "--epochs", "4",
            "--set", "checkpoint.every_steps=7", "--set", "eval_splits=[val]",
            "--set", "expect={}"]
    full = run_cli(*args, "--output", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([*ARCHSPEC, *map(str, args), "--output", str(killed_out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = [int(p.name) for p in killed_out.glob("*/*/checkpoints/latest/*")
                 if p.name.isdigit()]
        if steps and max(steps) >= 14:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(killed_out)
    assert not any(m.get("split") == "summary" for m in read_records(run)), "run finished before the kill"
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr
    a, step_a = _final_params(only_run(tmp_path / "full"))
    b, step_b = _final_params(run)
    assert step_a == step_b
    import jax
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    epochs = [m["epoch"] for m in read_records(run) if m["split"] == "train"]
    assert epochs == sorted(set(epochs)) == list(range(1, 5))


def test_four_devices_match_one_device(tmp_path):
    args = ["train", ROOT / "experiments/digits_mlp.yaml", "--epochs", "3", "--set",
            "eval_splits=[val]", "--set", "expect={}"]
    one = run_cli(*args, "--output", tmp_path / "one")
    four = run_cli(*args, "--output", tmp_path / "four",
                   env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert one.returncode == 0 and four.returncode == 0, one.stderr + four.stderr
    assert "on 4 device(s)" in four.stdout and "on 1 device(s)" in one.stdout
    la = [m["loss"] for m in read_records(only_run(tmp_path / "one")) if m["split"] in ("train", "val")]
    lb = [m["loss"] for m in read_records(only_run(tmp_path / "four")) if m["split"] in ("train", "val")]
    np.testing.assert_allclose(la, lb, rtol=2e-4)


def test_batch_not_dividing_devices_is_a_clear_error(tmp_path):
    r = run_cli("train", ROOT / "experiments/digits_mlp.yaml", "--batch-size", "30",
                "--output", tmp_path, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert r.returncode == 2
    assert "batch size 30 does not divide across 4 devices" in r.stderr
    assert "Traceback" not in r.stderr


def test_override_typo_says_did_you_mean(tmp_path):
    r = run_cli("train", ROOT / "experiments/digits_mlp.yaml", "--set", "optimizer.lrr=0.1",
                "--output", tmp_path)
    assert r.returncode == 2
    assert "unknown option 'lrr'" in r.stderr and "did you mean 'lr'" in r.stderr
    assert "--set optimizer.lrr=0.1" in r.stderr
    r = run_cli("train", ROOT / "experiments/digits_mlp.yaml", "--set", "optimizer.lr=fast",
                "--output", tmp_path)
    assert r.returncode == 2 and "optimizer.lr" in r.stderr


def test_bare_architecture_trains_on_builtin_data(tmp_path):
    r = run_cli("train", ROOT / "architectures/logistic_regression.yaml", "--data", "digits",
                "--steps", "5", "--set", "optimizer.lr=1e-2", "--output", tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = (only_run(tmp_path) / "config.yaml").read_text()
    assert "lr: 0.01" in cfg and "steps: 5" in cfg


# --- losses against NumPy -------------------------------------------------------------

def test_losses_match_numpy_formulas():
    import jax.numpy as jnp

    from archspec.engine.losses import per_example

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 2, 3])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = -np.log(p[np.arange(5), labels])
    got = per_example("categorical_crossentropy", "softmax", jnp.asarray(logits), jnp.asarray(labels))
    np.testing.assert_allclose(got, want, rtol=1e-5)

    z = rng.normal(size=(5, 1)).astype(np.float32) * 30  # large logits: the stable form matters
    y = np.array([1, 0, 1, 0, 1], np.float32)
    z64 = z[:, 0].astype(np.float64)
    # -log(sigmoid(z)) = log(1 + e^-z) and -log(1 - sigmoid(z)) = log(1 + e^z), exact in float64
    want = y * np.logaddexp(0, -z64) + (1 - y) * np.logaddexp(0, z64)
    got = per_example("binary_crossentropy", "sigmoid", jnp.asarray(z), jnp.asarray(y))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    pred = rng.normal(size=(5, 1)).astype(np.float32)
    t = rng.normal(size=(5, 1)).astype(np.float32)
    np.testing.assert_allclose(per_example("mse", "linear", jnp.asarray(pred), jnp.asarray(t)),
                               ((pred - t) ** 2)[:, 0], rtol=1e-6)
    soft = np.log1p(np.exp(pred))
    np.testing.assert_allclose(per_example("mse", "softplus", jnp.asarray(pred), jnp.asarray(t)),
                               ((soft - t) ** 2)[:, 0], rtol=1e-5)


def test_experiment_schema_file_is_current():
    from archspec.commands.schema import experiment_schema

    committed = json.loads((ROOT / "schema/experiment.schema.json").read_text())
    assert committed == experiment_schema()
    props = committed["properties"]
    assert {"architecture", "data", "optimizer", "loss", "health", "checkpoint"} <= set(props)
    for exp in EXPERIMENTS:  # every experiment points editors at it
        assert exp.read_text().startswith(
            "# yaml-language-server: $schema=../schema/experiment.schema.json")


def test_gradient_accumulation_equals_one_big_batch():
    """Two accumulated half batches update the parameters like one full batch."""
    import jax
    import jax.numpy as jnp

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    from archspec.experiment.config import Optimizer
    from archspec.engine.optim import make_optimizer
    from archspec.engine.step import HeadLoss, init_state, make_mesh, make_train_step

    g = load_architecture_text("name: t\ninput: {shape: [5]}\ndefaults: {activation: tanh}\n"
                               "layers:\n  - dense: 7\n  - dense: {units: 1, activation: linear}\n")
    model, heads = build_model(g), [HeadLoss("output", "mse", "linear", 1.0)]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    w = np.ones(8, np.float32)

    def run(accumulate, batches):
        tx, _ = make_optimizer(Optimizer(name="adam", lr=0.1, accumulate=accumulate), 10)
        state = init_state(model, g, tx, 0, jnp.zeros((1, 5)))
        step = make_train_step(model, heads, tx, make_mesh())
        for xb, yb, wb in batches:
            state, _, _ = step(state, xb, yb, wb)
        return jax.device_get(state.params)

    big = run(1, [(x, y, w)])
    acc = run(2, [(x[:4], y[:4], w[:4]), (x[4:], y[4:], w[4:])])
    first_half_only = run(2, [(x[:4], y[:4], w[:4])])
    for a, b, c in zip(*(jax.tree_util.tree_leaves(t) for t in (big, acc, first_half_only))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    init = run(1, [])
    for a, c in zip(jax.tree_util.tree_leaves(init), jax.tree_util.tree_leaves(first_half_only)):
        np.testing.assert_array_equal(a, c)  # no update until the k-th batch


# --- fit's on_epoch hook: a reason it returns prunes the run -------------------------------
def test_on_epoch_prunes_with_a_final_checkpoint(tmp_path):
    from archspec.experiment import load as experiment
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    heard = []

    def on_epoch(epoch, epochs, val):
        assert epochs == 4
        heard.append((epoch, {k: float(v) for k, v in val.items()}))
        return "too slow at epoch 2" if epoch == 2 else None

    loaded = experiment.load(ROOT / "experiments" / "digits_logistic.yaml", ["epochs=4", f"output={json.dumps(str(tmp_path))}"])
    result = fit(prepare_loaded(loaded), on_epoch=on_epoch)
    assert result.outcome == "pruned" and result.pruned == "too slow at epoch 2"
    assert [e for e, _ in heard] == [1, 2]
    records = read_records(result.run_dir)
    vals = [r for r in records if r["split"] == "val"]
    # the hook heard exactly what metrics.jsonl records (keys with "/" written with "_")
    assert [r["accuracy_classes"] for r in vals] == [v["accuracy/classes"] for _, v in heard]
    assert records[-1]["split"] == "summary" and records[-1]["status"] == "pruned"
    assert records[-1]["pruned_because"] == "too slow at epoch 2"
    assert not any(r["split"] == "test" for r in records)     # not a finished run: no test
    assert max(r["epoch"] for r in records if r["split"] == "train") == 2
    latest = result.run_dir / "checkpoints" / "latest"
    assert latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())
    attempts = json.loads((result.run_dir / "attempts.json").read_text())
    assert attempts[-1]["outcome"] == "pruned"

    runs = run_cli("runs", tmp_path, "--json")
    assert runs.returncode == 0, runs.stderr
    (row,) = json.loads(runs.stdout)
    assert row["status"] == "pruned" and row["epochs"] == 2
    ev = run_cli("eval", result.run_dir, "--json")
    assert ev.returncode == 0, ev.stderr
    out = json.loads(ev.stdout)
    assert out["status"] == "pruned" and out["why"] == "too slow at epoch 2"
    from archspec.viz.plot import load_curves   # what `archspec plot` labels it

    curves = load_curves(result.run_dir)
    assert curves.label.endswith("[pruned]") and curves.last_epoch == 2
