"""tools/results_table.py: README's results tables are the rendering of the saved check
results in docs/results/ (never edited by hand), and the rendering computes what it says."""
from __future__ import annotations

import pytest

import importlib.util
import statistics

from helpers import ROOT

spec = importlib.util.spec_from_file_location("results_table", ROOT / "tools/results_table.py")
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)


def test_readme_tables_are_the_saved_results():
    if not list((ROOT / "docs" / "results").glob("*.json")):
        pytest.skip("no recipe results saved in docs/results yet (make results writes them)")
    assert results_table.write(check_only=True) == 0


def _run(seed, acc, met=True, status="passed"):
    return {"seed": seed, "status": status, "seconds": 10.0 + seed,
            "test": {"loss": 0.1, "accuracy_x": acc},
            "expectations": [{"name": "test.accuracy", "met": met}]}


def test_seed_table_mean_std_and_expectations_met():
    saved = {"folder": "recipes", "files": {"recipes/r.yaml": {
        "name": "r", "description": "paper: 90%", "parameters": 1234, "date": "d",
        "commit": "c", "machine": "m",
        "runs": [_run(0, 0.91), _run(1, 0.93), _run(2, 0.89, met=False, status="missed")]}}}
    row = results_table.table(saved)[2]
    mean = 100 * statistics.mean([0.91, 0.93, 0.89])
    std = 100 * statistics.stdev([0.91, 0.93, 0.89])
    assert f"**{mean:.2f}% ± {std:.2f}** (91.00, 93.00, 89.00; seeds 0, 1, 2)" in row
    assert "| 2/3 |" in row and "| 11 s |" in row and "1,234" in row


def test_one_seed_table_names_a_miss():
    r = _run(0, 0.5, met=False, status="missed")
    saved = {"folder": "experiments", "files": {"experiments/e.yaml": {
        "name": "e", "description": "what", "parameters": 5, "date": "d", "commit": "c",
        "machine": "m", "runs": [r]}}}
    row = results_table.table(saved)[2]
    assert "**50.00%** accuracy" in row and "missed: test.accuracy" in row
