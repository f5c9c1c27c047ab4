"""Expectations a run can never record are refused before anything trains, whether the
experiment file or a --set flag leaves their split out of eval_splits (docs/ci.md)."""
from __future__ import annotations

from helpers import ROOT, run_cli

EXP = ROOT / "experiments" / "digits_logistic.yaml"   # expect: test.accuracy, test.loss


def test_eval_splits_emptied_by_a_flag_refuses_test_expectations(tmp_path):
    r = run_cli("train", EXP, "--set", "eval_splits=[]", "--output", tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--set eval_splits=[]" in r.stderr or "--set expect" in r.stderr
    assert "'test.accuracy' is never measured: eval_splits has no test" in r.stderr
    assert "'test.loss' is never measured" in r.stderr
    assert "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, no run folder


def test_a_flag_that_also_drops_the_expectations_trains(tmp_path):
    from archspec.experiment import load as experiment

    loaded = experiment.load(EXP, ["eval_splits=[val]", "expect={}"])
    assert loaded.exp.eval_splits == ["val"] and loaded.exp.expect == {}
