"""A run folder during an attempt: which weights the test split is scored with, and which
validation is the best checkpoint."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import ROOT, only_run, read_records, run_cli

ARCH = """name: tiny
input: {shape: [4]}
layers:
  - dense: {units: 8, activation: tanh, name: hidden}
  - dense: {units: 3, activation: linear, name: out}
heads:
  y: {from: out, output: softmax}
"""


def test_a_run_without_validation_scores_test_on_the_latest_weights(tmp_path):
    """eval_splits: [test] trains without validating, so there is no best checkpoint: the
    test split is scored with the final (latest) weights, as the README says."""
    r = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "2",
                "--set", "eval_splits=[test]", "--output", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    records = read_records(only_run(tmp_path))
    (test,) = [x for x in records if x["split"] == "test"]
    last_train = [x for x in records if x["split"] == "train"][-1]
    assert test["checkpoint"] == "latest" and test["checkpoint_step"] == last_train["step"]
    assert 0.5 < next(v for k, v in test.items() if k.startswith("accuracy_")) <= 1
    assert not [x for x in records if x["split"] == "val"]
    assert records[-1]["status"] == "finished"


def test_a_flat_validation_accuracy_keeps_the_checkpoint_of_the_lowest_loss(tmp_path):
    """Inputs carry no information: validation accuracy stays at the majority rate every
    epoch while the loss falls (the bias learns the class frequencies). The best checkpoint
    is the one with the lowest validation loss, not the first of equal accuracies."""
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((120, 4), np.float32), y=np.array([0, 0, 0, 1, 1, 2])[np.arange(120) % 6])
    (tmp_path / "net.yaml").write_text(ARCH)
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: e\narchitecture: net.yaml\ndata: {{name: npz, path: {path}, "
                   f"normalize: none}}\nepochs: 4\nbatch_size: 16\noutput: {tmp_path / 'runs'}\n"
                   "optimizer: {name: sgd, lr: 0.05}\n"
                   "health: {collapse_steps: 100000, chance_epochs: 0}\n")
    r = run_cli("train", exp)
    assert r.returncode == 0, r.stdout + r.stderr
    records = read_records(only_run(tmp_path / "runs"))
    vals = [x for x in records if x["split"] == "val"]
    assert len({x["accuracy_y"] for x in vals}) == 1          # flat
    losses = [x["loss"] for x in vals]
    assert losses == sorted(losses, reverse=True) and losses[0] > losses[-1]
    (test,) = [x for x in records if x["split"] == "test"]
    assert test["checkpoint"] == "best"
    assert test["checkpoint_step"] == vals[-1]["step"]        # the lowest loss, the last one


def test_bests_between_writes_are_held_and_the_true_best_is_on_disk_at_the_end(tmp_path):
    """With `best_every_minutes` longer than the run, the first best is written at once and
    every later one is held in memory: the best checkpoint at the end is the best validation
    of the run (best.json names its step), and evaluating it on val gives that record."""
    import json

    r = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "6",
                "--set", "checkpoint.best_every_minutes=60", "--output", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    run = only_run(tmp_path)
    vals = [x for x in read_records(run) if x["split"] == "val"]
    key = next(k for k in vals[0] if k.startswith("accuracy_"))
    best = max(vals, key=lambda v: (v[key], -v["loss"]))
    assert best is not vals[0]  # improved after the first write: that best was held
    assert json.loads((run / "best.json").read_text())["step"] == best["step"]
    assert sorted(p.name for p in (run / "checkpoints/best").iterdir()
                  if p.name.isdigit()) == [str(best["step"])]
    e = run_cli("eval", run, "--split", "val", "--checkpoint", "best", "--json")
    assert e.returncode == 0, e.stdout + e.stderr
    measured = json.loads(e.stdout)["metrics"]
    assert measured["loss"] == pytest.approx(best["loss"], rel=1e-5)
    assert measured[key.replace("_", "/")] == pytest.approx(best[key], rel=1e-6)
