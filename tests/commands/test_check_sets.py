"""`archspec check --set`: one override applied to every experiment checked (a results table
over seeds runs the same folder once per seed)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from helpers import run_cli

TINY = """\
name: {name}
architecture:
  name: tiny
  input: {{shape: [64]}}
  layers:
    - dense: {{units: 10, activation: linear, name: logits}}
  heads:
    digits: {{from: logits, output: softmax}}
data: {{name: digits, limit: 120}}
epochs: 1
batch_size: 32
"""


def test_set_overrides_every_experiment(tmp_path):
    folder = tmp_path / "exps"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.yaml").write_text(TINY.format(name=name))
    r = run_cli("check", folder, "--json", "--set", "seed=7", "--set", "batch_size=16",
                "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert [row["status"] for row in rows] == ["passed", "passed"]
    for row in rows:
        config = yaml.safe_load((Path(row["run_dir"]) / "config.yaml").read_text())
        assert (config["seed"], config["batch_size"]) == (7, 16)


def test_a_bad_set_makes_every_experiment_invalid_at_the_flag(tmp_path):
    (tmp_path / "a.yaml").write_text(TINY.format(name="a"))
    r = run_cli("check", tmp_path / "a.yaml", "--set", "seed=-1")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--set seed=-1" in r.stdout + r.stderr
