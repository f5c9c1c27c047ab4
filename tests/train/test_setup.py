"""Training reports through a reporter and never prints; its set-up is typed and frozen;
one function loads an experiment; data errors point at the YAML line of the option."""
from __future__ import annotations

import dataclasses
import textwrap

import pytest

from helpers import run_cli

ARCH = textwrap.dedent("""\
    name: tiny
    input: {shape: [8, 8, 3]}
    layers:
      - flatten
      - dense: {units: 4, activation: linear, name: logits}
    heads:
      shape: {from: logits, output: softmax}
    """)


def _experiment(tmp_path, options: str) -> str:
    (tmp_path / "tiny.yaml").write_text(ARCH)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: tiny
        architecture: tiny.yaml
        data:
          name: shapes
          options:
            classes: 4
        {options}
        steps: 2
        batch_size: 16
        """))
    return str(path)


def test_a_bad_data_option_points_at_its_line(tmp_path):
    exp = _experiment(tmp_path, "    colour: 3")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 2, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"{exp}:7:5" in err and "unknown option 'colour'" in err
    assert "Traceback" not in r.stderr


def test_a_bad_data_option_from_the_command_line_points_at_the_flag(tmp_path):
    exp = _experiment(tmp_path, "")
    r = run_cli("train", exp, "--set", "data.options.colour=3", "--output", tmp_path / "runs")
    assert r.returncode == 2, r.stderr + r.stdout
    assert "--set data.options.colour=3" in " ".join(r.stderr.split())


def test_data_errors_are_located_without_the_cli(tmp_path):
    from archspec.data import DataError
    from archspec.experiment import load as experiment

    with pytest.raises(DataError) as info:  # the options are checked as the file loads
        experiment.load(_experiment(tmp_path, "    colour: 3"))
    assert info.value.option == "colour"
    assert (info.value.pos.line, info.value.pos.col) == (7, 5)


def test_setup_is_frozen_and_a_restart_builds_a_new_one(tmp_path):
    from archspec.experiment import load as experiment
    from archspec.train.setup import prepare_loaded

    setup = prepare_loaded(experiment.load(_experiment(tmp_path, "")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setup.total_steps = 1
    again = setup.with_lr_factor(0.5)
    assert again is not setup and again.tx is not setup.tx
    assert again.exp is setup.exp and again.total_steps == setup.total_steps


def test_training_runs_quietly_with_the_null_reporter(tmp_path, capsys):
    from archspec.experiment import load as experiment
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded
    from archspec.engine.reporter import NullReporter

    loaded = experiment.load(_experiment(tmp_path, ""), [f"output={tmp_path / 'runs'}"])
    result = fit(prepare_loaded(loaded), NullReporter())
    assert result.outcome == "finished" and (result.run_dir / "metrics.jsonl").exists()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_a_bare_architecture_loads_the_same_way(tmp_path):
    from archspec.experiment import load as experiment

    (tmp_path / "tiny.yaml").write_text(ARCH)
    loaded = experiment.load(tmp_path / "tiny.yaml", ["steps=2"], data="shapes")
    assert loaded.exp.data.name == "shapes" and loaded.experiment_file is None
    assert loaded.graph.name == "tiny" and loaded.config["steps"] == 2


def test_a_data_option_refused_while_loading_the_data_points_at_its_line(tmp_path):
    (tmp_path / "table.csv").write_text("a,b,label\n" + "\n".join(
        f"{i % 3 * 0.5},{i % 5 * 0.25},{i % 2}" for i in range(40)) + "\n")
    (tmp_path / "net.yaml").write_text(textwrap.dedent("""\
        name: net
        input: {shape: [2]}
        layers:
          - dense: {units: 2, activation: linear, name: logits}
        heads:
          label: {from: logits, output: softmax}
        """))
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: t\narchitecture: net.yaml\ndata:\n  name: csv\n  path: table.csv\n"
                   "  options:\n    target: lable\nsteps: 1\nbatch_size: 8\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs", cwd=tmp_path)
    assert r.returncode == 2, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"{exp}:7:5" in err and "no column named 'lable'" in err and "label" in err
    assert "Traceback" not in r.stderr


def test_the_first_head_scores_the_run_whatever_the_names_sort_to():
    from types import SimpleNamespace

    from archspec.engine.measure import in_head_order
    from archspec.ui.train_tables import main_accuracy

    heads = [SimpleNamespace(head="shapes"), SimpleNamespace(head="aux")]  # GoogLeNet-style
    metrics = {"accuracy/aux": 0.5, "accuracy/shapes": 0.9, "loss": 1.0, "loss/aux": 2.0,
               "loss/shapes": 0.5}
    ordered = in_head_order(metrics, heads)
    assert list(ordered) == ["loss", "accuracy/shapes", "loss/shapes", "accuracy/aux", "loss/aux"]
    assert main_accuracy(ordered) == 0.9


def test_a_bad_convolution_backend_is_refused_before_a_run_folder_exists(tmp_path):
    """Before: ARCHSPEC_CONV_BACKEND=bogus gave a traceback from inside the first step and
    left a run folder that never trained."""
    r = run_cli("train", "experiments/digits_lenet.yaml", "--smoke", "--output", tmp_path,
                env={"ARCHSPEC_CONV_BACKEND": "bogus"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert "ARCHSPEC_CONV_BACKEND='bogus' is not a convolution backend" in err
    assert "one of auto, onednn, xla" in err
    assert not any(tmp_path.iterdir())
