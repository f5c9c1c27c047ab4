"""The search keys of a sweep file (search, trials, metric, direction, pruner, the `random:`
distributions and their `when:` conditions): read, checked with located errors and
did-you-mean, and turned into points. Nothing here trains."""
from __future__ import annotations

import json
import random

import pytest

from helpers import ROOT, run_cli

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"   # adam, one classifier head


def sweep_file(tmp_path, body: str, name: str = "s.yaml"):
    """A sweep of digits_logistic; `body` starts on line 2."""
    path = tmp_path / name
    path.write_text(f"experiment: {json.dumps(str(EXPERIMENT))}\n" + body)
    return path


def errors_of(file) -> str:
    from archspec.errors import ArchspecError
    from archspec.experiment.sweep import load_sweep

    with pytest.raises(ArchspecError) as info:
        load_sweep(file)
    return "\n".join(e.render_plain() for e in info.value.located())


@pytest.mark.parametrize("body, where, words", [
    ("search: tpee\ntrials: 4\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (2, 9),
     ["unknown search 'tpee'", "did you mean 'tpe'?"]),
    ("search: tpe\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (2, 9),
     ["`search: tpe` needs a budget", "trials: N"]),
    ("search: random\ntrials: 0\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (3, 9),
     ["`trials` is a positive integer"]),
    ("trials: 4\ngrid: {optimizer.lr: [0.1, 0.2]}\n", (2, 9),
     ["a grid runs every point", "search: random, tpe, cmaes or qmc"]),
    ("search: tpe\ntrials: 4\nsamples: 3\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
     (4, 10), ["`samples` counts the random draws of a grid", "use `trials` instead"]),
    ("search: tpe\ntrials: 4\npruner: ashaa\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
     (4, 9), ["unknown pruner 'ashaa'", "did you mean 'asha'?"]),
    ("search: tpe\ntrials: 4\npruner: {name: median, min_trails: 2}\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (4, 24),
     ["unknown key 'min_trails' in `pruner`", "did you mean 'min_trials'?"]),
    ("search: tpe\ntrials: 4\npruner: {name: asha, min_epochs: 0}\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (4, 9),
     ["`min_epochs` is a positive integer", "the first epoch at which a trial may be pruned"]),
    ("search: tpe\ntrials: 4\npruner: {name: asha, reduction_factor: 1}\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (4, 9),
     ["`reduction_factor` is an integer of at least 2", "keep the best 1/reduction_factor"]),
    ("search: tpe\ntrials: 4\npruner: {name: median, reduction_factor: 2}\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (4, 9),
     ["`reduction_factor` spaces the rungs of asha and hyperband", "name: median"]),
    ("search: tpe\ntrials: 4\ndirection: maximise\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
     (4, 12), ["unknown direction 'maximise'", "did you mean 'maximize'?"]),
    ("search: tpe\ntrials: 4\nmetric: val.acuracy\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
     (4, 9), ["unknown metric 'val.acuracy'", "did you mean 'val.accuracy'?"]),
    ("search: tpe\ntrials: 4\nmetric: test.accuracy\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (4, 9),
     ["a search compares validation scores"]),
    ("search: tpe\ntrials: 4\nmetric: val.loss\ndirection: maximize\n"
     "random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n", (5, 12),
     ["val.loss is to minimize", "remove `direction`"]),
    ("random:\n  batch_size: {int: [16.5, 64]}\n", (3, 15),
     ["int needs [low, high] whole numbers"]),
    ("random:\n  batch_size: {intt: [16, 64]}\n", (3, 15),
     ["unknown distribution 'intt'", "did you mean 'int'?"]),
])
def test_bad_search_keys_are_located(tmp_path, body, where, words):
    file = sweep_file(tmp_path, body)
    text = errors_of(file)
    assert f"{file}:{where[0]}:{where[1]}:" in text, text
    for w in words:
        assert w in text, text


def test_when_names_an_earlier_key_and_a_value_it_takes(tmp_path):
    file = sweep_file(tmp_path, "random:\n"
                                "  optimizer.name: {choice: [adam, momentum]}\n"
                                "  optimizer.momentum: {uniform: [0.8, 0.99], when: {optimizer.nme: momentum}}\n"
                                "  optimizer.lr: {uniform: [0.1, 0.2], when: {optimizer.name: momentun}}\n")
    text = errors_of(file)
    assert "`when` names 'optimizer.nme', which is not swept before 'optimizer.momentum'" in text
    assert "did you mean 'optimizer.name'?" in text
    assert "'optimizer.name' never takes the value 'momentun'" in text
    assert "did you mean 'momentum'?" in text
    assert f"{file}:4:" in text and f"{file}:5:" in text


def test_cli_refuses_bad_search_keys_before_training(tmp_path):
    file = sweep_file(tmp_path, "search: tpe\ntrials: 2\npruner: meadian\n"
                                "random: {optimizer.lr: {loguniform: [0.001, 0.1]}}\n")
    r = run_cli("sweep", file, "--output", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{file}:4:9" in r.stderr and "did you mean 'median'?" in r.stderr
    assert not (tmp_path / "out").exists()


def test_grid_points_with_int_draws_and_conditions(tmp_path):
    """A grid's random draws (`samples`) keep their meaning; an int draw is a whole number in
    [lo, hi]; a conditional key appears only where its condition holds."""
    from archspec.experiment.sweep import load_sweep

    file = sweep_file(tmp_path, "set: {epochs: 1}\n"
                                "grid:\n  optimizer.name: [adam, momentum]\n"
                                "random:\n"
                                "  batch_size: {int: [16, 20]}\n"
                                "  optimizer.momentum: {uniform: [0.8, 0.9], when: {optimizer.name: momentum}}\n"
                                "samples: 3\nseed: 5\n")
    sw = load_sweep(file)
    points = sw.points()
    assert len(points) == 6 and sw.search.kind == "grid" and sw.search.enumerated
    for p in points:
        assert isinstance(p.overrides["batch_size"], int) and 16 <= p.overrides["batch_size"] <= 20
        momentum = p.overrides.get("optimizer.momentum")
        assert (momentum is not None) == (p.overrides["optimizer.name"] == "momentum")
        assert momentum is None or 0.8 <= momentum <= 0.9
    # the same seed draws the same points: an independent replay of the draws
    rng = random.Random(5)
    draws = [(rng.randint(16, 20), float(f"{rng.uniform(0.8, 0.9):.4g}")) for _ in range(3)]
    assert [p.overrides["batch_size"] for p in points[3:]] == [b for b, _ in draws]
    assert [p.overrides["optimizer.momentum"] for p in points[3:]] == [m for _, m in draws]


def test_conditional_option_is_checked_only_where_it_is_read(tmp_path):
    """optimizer.momentum is refused on adam; under `when: {optimizer.name: momentum}` it is
    valid, and the probes check both ends of its range against the experiment."""
    from archspec.experiment.sweep import check_points, load_sweep

    ok = sweep_file(tmp_path, "search: tpe\ntrials: 4\n"
                              "random:\n"
                              "  optimizer.name: {choice: [adam, momentum]}\n"
                              "  optimizer.momentum: {uniform: [0.8, 0.99], when: {optimizer.name: momentum}}\n"
                              "  optimizer.lr: {loguniform: [0.001, 0.1]}\n", "ok.yaml")
    sw = load_sweep(ok)
    probes = [p.varying for p in sw.checked_points()]
    assert {"optimizer.name": "momentum", "optimizer.momentum": 0.99, "optimizer.lr": 0.001} in probes
    assert {"optimizer.name": "adam", "optimizer.lr": 0.1} in probes
    assert all(("optimizer.momentum" in p) == (p["optimizer.name"] == "momentum") for p in probes)
    check_points(sw, sw.checked_points())

    from archspec.errors import ArchspecError

    bad = sweep_file(tmp_path, "search: tpe\ntrials: 4\n"
                               "random:\n"
                               "  optimizer.momentum: {uniform: [0.8, 0.99]}\n", "bad.yaml")
    sw = load_sweep(bad)
    with pytest.raises(ArchspecError) as info:
        check_points(sw, sw.checked_points())
    text = info.value.located()[0].render_plain()
    assert f"{bad}:5:3" in text and "'momentum' has no effect in this experiment" in text


def test_metric_defaults_and_heads(tmp_path):
    """The default metric is val.accuracy for a classifier, val.loss for regression; a metric
    of a head the experiment lacks is refused at the `metric:` line."""
    from archspec.errors import ArchspecError
    from archspec.experiment.sweep import load_sweep, objective

    body = "search: random\ntrials: 2\nrandom: {optimizer.lr: {uniform: [0.1, 0.2]}}\n"
    assert objective(load_sweep(sweep_file(tmp_path, body))) == ("val.accuracy", "maximize")
    regression = tmp_path / "r.yaml"
    regression.write_text(f"experiment: {ROOT / 'experiments' / 'function_approx.yaml'}\n" + body)
    assert objective(load_sweep(regression)) == ("val.loss", "minimize")
    wrong = sweep_file(tmp_path, "metric: val.accuracy_digitz\n" + body, "w.yaml")
    with pytest.raises(ArchspecError) as info:
        objective(load_sweep(wrong))
    text = info.value.located()[0].render_plain()
    assert f"{wrong}:2:9" in text and "unknown head 'digitz'" in text
