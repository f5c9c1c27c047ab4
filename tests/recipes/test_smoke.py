"""Every recipe in recipes/ trains in smoke mode through the CLI when its data is on this
machine, and is skipped, saying which data is missing, when it is not. Nothing is downloaded:
the real data comes from system packages (dataset-fashion-mnist), the mnist1d package, or a
folder the user gives."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import ROOT, only_run, read_records, run_cli

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schema/experiment.schema.json"
# Recipes whose data was never on the machines that measured the others: no figure yet.
UNMEASURED = {"cifar10_resnet18", "finetune_resnet18"}


def missing_data(recipe: Path) -> str | None:
    """Why the recipe's data is not here (None: it is)."""
    from archspec.data.registry import SOURCES
    from archspec.experiment.config import load_experiment

    exp, _ = load_experiment(recipe)
    data = exp.data
    if data.name == "mnist1d" and importlib.util.find_spec("mnist1d") is None:
        return "the mnist1d package is not installed (pip install mnist1d)"
    if SOURCES[data.name].takes_path:
        path = Path(data.path)
        path = path if path.is_absolute() else ROOT / path  # the CLI runs from ROOT
        if not path.exists():
            return f"its data is not on this machine: {data.path}"
    return None


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_runs_in_smoke_mode_when_its_data_is_here(recipe, tmp_path):
    why = missing_data(recipe)
    if why:
        pytest.skip(f"{recipe.name}: {why}")
    # --smoke keeps at most 300 examples: a small batch fits any recipe into them
    r = run_cli("train", recipe, "--smoke", "--batch-size", "16", "--output", tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    summary = read_records(only_run(tmp_path))[-1]
    assert summary["split"] == "summary" and summary["status"] == "finished"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_states_the_figure_it_reproduces(recipe):
    from archspec.experiment.config import load_experiment

    assert recipe.read_text().startswith(SCHEMA_LINE)
    if recipe.stem in UNMEASURED:
        pytest.skip(f"{recipe.name} has not been measured: its data is not on this machine")
    exp, _ = load_experiment(recipe)
    assert "test.accuracy" in exp.expect, "expect: the published test accuracy"
