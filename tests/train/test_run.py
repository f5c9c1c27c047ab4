"""A run folder during an attempt: which weights the test split is scored with, and which
validation is the best checkpoint."""
from __future__ import annotations

import numpy as np

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
