"""Which checkpoint a run's test score belongs to when the run has no val split
(`data.val_fraction: 0`): the latest weights, trained on every training example."""
from __future__ import annotations

from helpers import only_run, read_records, run_cli

TINY = """\
name: noval
architecture:
  name: tiny
  input: {shape: [64]}
  layers:
    - dense: {units: 10, activation: linear, name: logits}
  heads:
    digits: {from: logits, output: softmax}
data: {name: digits, val_fraction: 0, test_fraction: 0.2, limit: 200}
epochs: 2
batch_size: 32
"""


def test_a_run_without_val_trains_on_everything_and_tests_the_latest_weights(tmp_path):
    exp = tmp_path / "noval.yaml"
    exp.write_text(TINY)
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(160 train / 0 val / 40 test)" in r.stdout
    records = read_records(only_run(tmp_path / "runs"))
    assert not [rec for rec in records if rec["split"] == "val"]
    (test,) = [rec for rec in records if rec["split"] == "test"]
    assert (test["checkpoint"], test["checkpoint_step"]) == ("latest", 10)
    r = run_cli("eval", only_run(tmp_path / "runs"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"latest"' in r.stdout
