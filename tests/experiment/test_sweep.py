"""Sweep keys are checked before anything trains: a key in both `grid` and `random`, and a
swept key the experiment does not read (an option of another optimizer, a typo), are refused
with the sweep file's line:col, what was expected, what was found and a hint."""
from __future__ import annotations

import json
import typing

import pytest

from helpers import ROOT, run_cli

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"   # optimizer: adam, 1 head


def sweep_file(tmp_path, body: str, name: str = "s.yaml"):
    """A sweep of digits_logistic; `body` starts on line 2."""
    path = tmp_path / name
    path.write_text(f"experiment: {json.dumps(str(EXPERIMENT))}\n" + body)
    return path


def refused(tmp_path, file):
    """Run the sweep; it must stop with exit code 2 before any run folder is written."""
    out = tmp_path / "out"
    r = run_cli("sweep", file, "--output", out)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not out.exists(), "something was written before the refusal"
    return r.stderr


def check(file):
    from archspec.experiment.sweep import check_points, load_sweep

    sw = load_sweep(file)
    check_points(sw, sw.points())


# --- the command line ------------------------------------------------------------------------
def test_key_in_grid_and_random_is_refused(tmp_path):
    file = sweep_file(tmp_path, "set: {epochs: 1}\n"
                                "grid:\n"
                                "  optimizer.lr: [0.01, 0.05]\n"
                                "random:\n"
                                "  optimizer.lr: {loguniform: [0.001, 0.1]}\n"
                                "samples: 2\n")
    err = refused(tmp_path, file)
    assert f"{file}:6:3:" in err
    assert "`optimizer.lr` is also in `grid`" in err
    assert "grid.optimizer.lr (line 4) and random.optimizer.lr" in err
    assert "random draws would replace the grid values" in err


def test_option_of_another_optimizer_is_refused(tmp_path):
    file = sweep_file(tmp_path, "grid:\n"
                                "  optimizer.lr: [0.01, 0.05]\n"
                                "  optimizer.momentum: [0.8, 0.9]\n")
    err = refused(tmp_path, file)
    assert f"{file}:4:3: error: optimizer.momentum:" in err
    assert "expected: optimizer.name: momentum or nesterov" in err
    assert "found:    optimizer.name: adam" in err
    assert ("momentum is an option of the momentum and nesterov optimizers; this "
            "experiment's optimizer.name is adam") in err


def test_misspelt_key_is_refused_at_the_key(tmp_path):
    file = sweep_file(tmp_path, "set: {epochs: 1}\n"
                                "grid:\n"
                                "  optimizer.lrr: [0.01, 0.05]\n")
    err = refused(tmp_path, file)
    assert f"{file}:4:3: error: optimizer.lrr" in err
    assert "unknown option 'lrr'" in err and "did you mean 'lr'?" in err


# --- the same checks, in-process -------------------------------------------------------------
@pytest.mark.parametrize("body, where, words", [
    ("set: {optimizer.lr: 0.1}\ngrid:\n  optimizer.lr: [0.01]\n", (4, 3),
     ["`optimizer.lr` is also in `set`"]),
    ("set: {optimizer.schedule.final_lr: 0.001}\ngrid:\n  optimizer.schedule: [{name: cosine}]\n",
     (4, 3), ["`optimizer.schedule` overlaps `optimizer.schedule.final_lr`"]),
    ("grid:\n  optimizer.schedule.final_lr: [0.0, 0.001]\n", (3, 3),
     ["'final_lr' has no effect", "optimizer.schedule.name: constant"]),
    ("set: {steps: 20}\ngrid:\n  epochs: [1, 2]\n", (4, 3),
     ["epochs is read only when `steps` is not set", "steps: 20"]),
    ("grid:\n  health.restart_lr_factor: [0.1, 0.5]\n", (3, 3), ["health.restarts: 0"]),
    ("set: {loss.classes: {kind: binary_crossentropy}}\ngrid:\n"
     "  loss.classes.label_smoothing: [0.1]\n", (4, 3),
     ["an option of categorical_crossentropy", "loss.classes.kind: binary_crossentropy"]),
    ("grid:\n  loss.clases.kind: [mse]\n", (3, 3),
     ["unknown head 'clases'", "did you mean 'classes'?"]),
    ("set: {output: elsewhere}\ngrid:\n  optimizer.lr: [0.01]\n", (2, 7),
     ["does not read the experiment's `output`", "--output"]),
    ("grid:\n  data.options.n: [10]\n", (3, 3), ["unknown option 'n'"]),
])
def test_unread_or_clashing_keys_are_located(tmp_path, body, where, words):
    from archspec.errors import SpecErrors

    file = sweep_file(tmp_path, body)
    with pytest.raises(SpecErrors) as exc:
        check(file)
    (error,) = exc.value.errors
    assert (error.pos.file, error.pos.line, error.pos.col) == (str(file), *where)
    text = error.render_plain()
    for w in words:
        assert w in text, text


def test_valid_sweeps_still_validate(tmp_path):
    # a key read by some of the points only (momentum, for the momentum optimizer) is kept
    check(sweep_file(tmp_path, "grid:\n  optimizer.name: [adam, momentum]\n"
                               "  optimizer.momentum: [0.8, 0.95]\n", "mixed.yaml"))
    # the mapping first, a key inside it afterwards: both apply
    check(sweep_file(tmp_path, "set: {optimizer.schedule: {name: cosine}, epochs: 1}\n"
                               "grid:\n  optimizer.schedule.final_lr: [0.0, 0.0001]\n"
                               "random:\n  optimizer.lr: {loguniform: [0.001, 0.1]}\n"
                               "samples: 2\n", "nested.yaml"))
    check(sweep_file(tmp_path, "set: {optimizer.name: nesterov}\n"
                               "grid:\n  optimizer.momentum: [0.8, 0.95]\n", "nesterov.yaml"))
    check(ROOT / "sweeps" / "vgg_lr.yaml")


def test_every_option_read_conditionally_is_known():
    """READS names real fields and real values, and covers every option whose description
    says which settings read it (`momentum/nesterov: ...`)."""
    from archspec.experiment import config as C
    from archspec.experiment.sweep import READS

    def field_at(path):
        parts = path.split(".")
        model = C.Experiment
        if parts[0] == "loss":
            model, parts = C.LossSpec, parts[2:]
        for part in parts[:-1]:
            model = model.model_fields[part].annotation
        return model, model.model_fields[parts[-1]]

    covered = set()
    for option, setting, reads, _ in READS:
        _, decider = field_at(setting)
        if not callable(reads) and reads != (None,):
            assert set(reads) <= set(typing.get_args(decider.annotation)), (option, reads)
        head, _, leaves = option.rpartition(".")
        for leaf in leaves.split("|"):
            model, _ = field_at(f"{head}.{leaf}" if head else leaf)
            covered.add((model, leaf))
    for model, decider in ((C.Optimizer, "name"), (C.Schedule, "name"), (C.LossSpec, "kind")):
        choices = set(typing.get_args(model.model_fields[decider].annotation))
        for name, f in model.model_fields.items():
            prefix, sep, _ = (f.description or "").partition(":")
            if sep and set(prefix.split("/")) <= choices:
                assert (model, name) in covered, f"{model.__name__}.{name} is not in READS"
