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


def test_a_tie_of_the_best_score_goes_to_the_lower_val_loss(tmp_path):
    """20 val examples: the accuracy reaches its top more than once; the best checkpoint is
    the validation with the top accuracy and, among those, the lowest loss."""
    import json

    exp = tmp_path / "tie.yaml"
    exp.write_text(TINY.replace("epochs: 5", "epochs: 14").replace("lr: 0.05", "lr: 0.01"))
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout + r.stderr
    run = only_run(tmp_path / "runs")
    vals = [rec for rec in read_records(run) if rec["split"] == "val"]
    top = max(v["accuracy_digits"] for v in vals)
    tied = [v for v in vals if v["accuracy_digits"] == top]
    assert len(tied) >= 2, "no tie to break"
    chosen = min(tied, key=lambda v: v["loss"])
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == chosen["step"] and best["loss"] == chosen["loss"]
    assert chosen is not tied[0]   # not simply the first to reach the top
