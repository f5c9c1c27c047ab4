"""load_dataset: a generated data set (shapes, function, text, ...) is bounded before it is
drawn: a small experiment file cannot ask for a hundred million examples."""
from __future__ import annotations

import pytest

from helpers import run_cli, time_limit

from archspec.data import DataConfig, DataError, load_dataset


@pytest.mark.parametrize("name,shape,n,found", [
    ("function", (3,), 100_000_000, "100,000,000 examples"),
    ("shapes", (64, 64, 3), 100_000, "4.58 GiB"),
    ("text", None, 10**9, "1,000,000,000 examples"),
])
def test_a_generated_set_beyond_the_bounds_is_refused_before_drawing(name, shape, n, found):
    with time_limit(10), pytest.raises(DataError) as info:
        load_dataset(DataConfig(name=name, options={"n": n}), shape, seed=0)
    err = info.value
    assert err.option == "n" and found in err.message
    assert "1,000,000" in err.hint or "GiB" in err.hint


def test_limit_counts_and_sets_within_the_bounds_load(tmp_path):
    ds = load_dataset(DataConfig(name="function", options={"n": 10**9}, limit=50), (3,), seed=0)
    assert len(ds.train.y) + len(ds.val.y) + len(ds.test.y) == 50


def test_the_cli_points_at_the_line_of_n(tmp_path):
    exp = tmp_path / "gen.yaml"
    exp.write_text("name: gen\narchitecture:\n  name: t\n  input: {shape: [3]}\n"
                   "  layers: [dense: {units: 1, activation: linear}]\n"
                   "data:\n  name: function\n  options: {n: 100000000}\n")
    r = run_cli("data", "show", exp, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert f"{exp}:8:" in text and "100,000,000 examples" in text
