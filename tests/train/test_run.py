"""What a run folder records with `eval_every` (validation every N epochs and after the
last), and the located refusal of `eval_flip` where mirroring cannot apply."""
from __future__ import annotations

from helpers import only_run, read_records, run_cli

TINY = """\
name: every
architecture:
  name: linear
  input: {shape: [64]}
  layers:
    - dense: {units: 10, activation: linear, name: logits}
  heads:
    digits: {from: logits, output: softmax}
data: {name: digits, limit: 200}
optimizer: {name: adam, lr: 0.05}
epochs: 5
batch_size: 40
"""


def test_eval_every_validates_every_n_epochs_and_after_the_last(tmp_path):
    exp = tmp_path / "every.yaml"
    exp.write_text(TINY + "eval_every: 2\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout + r.stderr
    records = read_records(only_run(tmp_path / "runs"))
    assert [rec["epoch"] for rec in records if rec["split"] == "val"] == [2, 4, 5]
    assert [rec["epoch"] for rec in records if rec["split"] == "train"] == [1, 2, 3, 4, 5]
    (test,) = [rec for rec in records if rec["split"] == "test"]
    assert test["checkpoint"] == "best"


def test_eval_flip_on_a_vector_input_is_refused_at_its_line(tmp_path):
    exp = tmp_path / "flip.yaml"
    exp.write_text(TINY + "eval_flip: true\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 2, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert f"{exp}:13:12: error: eval_flip: cannot apply" in out and "(64,)" in out
    assert "Traceback" not in out
