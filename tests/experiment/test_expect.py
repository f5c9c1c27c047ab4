"""Expectations a run can never record are refused before anything trains, whether the
experiment file or a --set flag leaves their split out of eval_splits (docs/ci.md)."""
from __future__ import annotations

import pytest

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


def _errors_of(tmp_path, expect_yaml: str):
    """The located errors of an experiment with this `expect:` block, as loading it gives."""
    from archspec.errors import SpecErrors
    from archspec.experiment import load as experiment

    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\narchitecture: {ROOT}/architectures/logistic_regression.yaml\n"
                    "data: {name: digits}\n" + expect_yaml)
    try:
        experiment.load(path, [])
    except SpecErrors as exc:
        return exc.errors
    return []


def test_a_metric_bounded_twice_flat_and_nested_is_refused_at_the_second(tmp_path):
    """Before: `test.accuracy: ">= 0.99"` beside `test: {accuracy: ">= 0.05"}` judged only
    the last, so a run at 7% passed."""
    errors = _errors_of(tmp_path, 'expect:\n  test.accuracy: ">= 0.99"\n'
                                  '  test: {accuracy: ">= 0.05"}\n')
    assert [e.message for e in errors] == ["'test.accuracy' is bounded twice"]
    assert (errors[0].pos.line, errors[0].pos.col) == (6, 10)  # at `accuracy` inside `test: {...}`


@pytest.mark.parametrize("name,bound,ok", [
    ("test.accuracy", ">= 1", True), ("test.accuracy", "> 1", False),
    ("test.accuracy", "< 0", False), ("test.accuracy", "<= 0", True),
    ("test.loss", "< 0", False), ("test.loss", "<= -0.5", False), ("test.loss", "<= 0", True),
    ("val.accuracy", "> 1", False), ("time_s", "< 0", False), ("time_s", ">= 0", True)])
def test_bounds_no_run_can_meet_are_refused(tmp_path, name, bound, ok):
    errors = _errors_of(tmp_path, f'expect:\n  {name}: "{bound}"\n')
    assert [e.message for e in errors] == ([] if ok else [f"'{name}' can never be {bound}"])
