"""Every command that takes an architecture takes an experiment too: validate checks the
experiment, its data options and its architecture together."""
from __future__ import annotations

from helpers import ROOT, run_cli


def test_validate_and_summary_take_an_experiment():
    r = run_cli("validate", ROOT / "experiments/digits_lenet.yaml",
                ROOT / "architectures/resnet18.yaml")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "53,002 parameters" in r.stdout and "11,689,512" in r.stdout
    r = run_cli("summary", ROOT / "experiments/shapes_resnet.yaml", "--depth", "0")
    assert r.returncode == 0, r.stderr
    assert "77,652" in r.stdout  # the inline architecture, counted from its Flax variables


def test_validate_reports_an_experiments_data_option_at_its_line(tmp_path):
    exp = tmp_path / "bad.yaml"
    text = (ROOT / "experiments/digits_lenet.yaml").read_text()
    text = text.replace("architecture: ../", f"architecture: {ROOT}/")
    exp.write_text(text.replace("data: {name: digits, val_fraction: 0.1, test_fraction: 0.2}",
                                "data:\n  name: shapes\n  options: {colour: 3}"))
    good = tmp_path / "good.yaml"
    good.write_text((ROOT / "architectures/mlp.yaml").read_text())
    r = run_cli("validate", exp, good)
    assert r.returncode == 2
    assert "unknown option 'colour'" in r.stderr and f"{exp}:" in r.stderr
    assert f"ok {good}" in r.stdout  # the other file is still checked
    assert "Traceback" not in r.stderr
